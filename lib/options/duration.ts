import { BemiError } from '../shared/bemi-error';

/** Units a retention duration may use, in milliseconds. */
const UNIT_MS: Record<string, number> = {
  s: 1000,
  m: 60_000,
  h: 3_600_000,
  d: 86_400_000,
  w: 7 * 86_400_000,
};

const DURATION = /^\s*(\d+)\s*([smhdw])\s*$/;

/** Thrown when a retention duration cannot be read; the message names the option and the fix. */
export class BemiRetentionOptionsError extends BemiError {
  constructor(
    readonly option: string,
    problem: string,
    fix: string,
  ) {
    super(`Retention option "${option}" ${problem}`, fix);
  }
}

/**
 * Reads a duration such as '365d', '12h', '30m', '90s' or '2w' (or a number of milliseconds)
 * into milliseconds. Months and years are not accepted: their length varies, so '365d' says
 * exactly what is meant. `option` names the option in the error message.
 */
export function parseRetentionDuration(value: unknown, option: string): number {
  if (typeof value === 'number') {
    if (Number.isSafeInteger(value) && value > 0) return value;
    throw new BemiRetentionOptionsError(option, `must be a positive whole number of milliseconds, got ${value}`, 'Or give a duration such as "365d", "12h" or "30m".');
  }
  if (typeof value === 'string') {
    const m = DURATION.exec(value);
    if (m && Number(m[1]) > 0) {
      const ms = Number(m[1]) * UNIT_MS[m[2]];
      if (Number.isSafeInteger(ms)) return ms;
    }
    throw new BemiRetentionOptionsError(
      option,
      `is not a duration: ${JSON.stringify(value)}`,
      'Write a positive whole number followed by s, m, h, d or w, e.g. "365d", "12h" or "30m" (months and years vary in length: use days).',
    );
  }
  throw new BemiRetentionOptionsError(option, `must be a duration string such as "365d" or a number of milliseconds, got ${value === null ? 'null' : typeof value}`, 'Example: maxAge: "365d".');
}
