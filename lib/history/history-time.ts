import { BemiHistoryArgumentError } from './history.errors';

/**
 * An instant with microsecond precision, as PostgreSQL stores `timestamptz`. `lower` and `upper`
 * differ only for a `Date`, which only knows its millisecond and so stands for all of it.
 */
export interface Instant {
  /** First microsecond covered, UTC ISO text with 6 fraction digits (safe to cast to timestamptz). */
  lower: string;
  /** Last microsecond covered. */
  upper: string;
  /** The upper bound in microseconds since the epoch. */
  upperMicros: bigint;
}

const ISO = /^(\d{4})-(\d{2})-(\d{2})[T ](\d{2}):(\d{2})(?::(\d{2})(?:\.(\d{1,6}))?)?(Z|z|[+-]\d{2}(?::?\d{2})?)$/;

export function parseInstant(value: unknown, method: string, argument: string): Instant {
  if (value instanceof Date) {
    const ms = value.getTime();
    if (!Number.isFinite(ms)) throw new BemiHistoryArgumentError(method, argument, 'is an invalid Date.');
    checkRange(ms, method, argument);
    const micros = BigInt(ms) * 1000n;
    return { lower: formatMicros(micros), upper: formatMicros(micros + 999n), upperMicros: micros + 999n };
  }
  if (typeof value === 'string') {
    const m = ISO.exec(value.trim());
    if (!m) {
      throw new BemiHistoryArgumentError(
        method,
        argument,
        `is not an ISO 8601 timestamp with a time zone offset: ${JSON.stringify(value)}. Use e.g. "2023-12-11T17:09:14Z" or "2023-12-11T19:09:14.123456+02:00" (a time without offset would depend on the server's time zone).`,
      );
    }
    const [, y, mo, d, h, mi, s = '0', frac = '', zone] = m;
    const wallMs = Date.UTC(+y, +mo - 1, +d, +h, +mi, +s);
    const check = new Date(wallMs);
    // Date.UTC silently rolls 2023-02-30 over to March; refuse instead.
    if (check.getUTCFullYear() !== +y || check.getUTCMonth() !== +mo - 1 || check.getUTCDate() !== +d || +h > 23 || +mi > 59 || +s > 59) {
      throw new BemiHistoryArgumentError(method, argument, `is not a valid date/time: ${JSON.stringify(value)}.`);
    }
    const offsetMinutes = zoneOffsetMinutes(zone);
    const ms = wallMs - offsetMinutes * 60_000;
    checkRange(ms, method, argument);
    const micros = BigInt(ms) * 1000n + BigInt(frac.padEnd(6, '0'));
    const text = formatMicros(micros);
    return { lower: text, upper: text, upperMicros: micros };
  }
  throw new BemiHistoryArgumentError(method, argument, `must be a Date or an ISO 8601 string with offset, got ${describe(value)}.`);
}

function zoneOffsetMinutes(zone: string): number {
  if (zone === 'Z' || zone === 'z') return 0;
  const sign = zone[0] === '-' ? -1 : 1;
  const digits = zone.slice(1).replace(':', '');
  return sign * (Number(digits.slice(0, 2)) * 60 + Number(digits.slice(2) || '0'));
}

function checkRange(ms: number, method: string, argument: string): void {
  // Keeps toISOString() in its plain four-digit-year form.
  if (ms < Date.UTC(1, 0, 1) || ms > Date.UTC(9999, 11, 31, 23, 59, 59, 999)) {
    throw new BemiHistoryArgumentError(method, argument, 'is outside the years 0001–9999.');
  }
}

/** Microseconds since the epoch → `YYYY-MM-DDTHH:MM:SS.ffffffZ`. */
export function formatMicros(micros: bigint): string {
  let ms = micros / 1000n;
  let rest = micros % 1000n;
  if (rest < 0n) {
    rest += 1000n;
    ms -= 1n;
  }
  const iso = new Date(Number(ms)).toISOString(); // ...SS.mmmZ
  return `${iso.slice(0, -1)}${rest.toString().padStart(3, '0')}Z`;
}

export function describe(value: unknown): string {
  if (value === null) return 'null';
  if (Array.isArray(value)) return 'an array';
  if (value instanceof Date) return 'a Date';
  if (typeof value === 'string') return JSON.stringify(value.length > 60 ? `${value.slice(0, 60)}…` : value);
  if (typeof value === 'object') return `an object (${(value as object).constructor?.name ?? 'Object'})`;
  return `${typeof value} ${String(value)}`;
}
