import { BemiRulesError, checkRules } from '../rules/rules-compiler';
import { BemiError } from '../shared/bemi-error';
import { resolveTrailLocation, TRAIL_LOCATION_KEYS, type TrailLocationOptions } from '../trail/trail-location';
import type { BemiModuleOptions, BemiResolvedOptions } from './bemi-options.interfaces';
import { checkCaptureOptions } from './capture-options';
import { DEFAULT_MAX_CONTEXT_SIZE, DEFAULT_REDACTED_CONTEXT_KEYS } from './defaults';
import { resolveRetentionOptions } from './retention-options';

const KNOWN_OPTIONS = new Set(['context', 'defaultContext', 'maxContextSize', 'attachToOrm', 'capture', 'history', 'redactContextKeys', 'rules', 'retention']);

/** Thrown at startup when BemiModule options are wrong; the message names the option and the fix. */
export class BemiOptionsError extends BemiError {
  constructor(
    readonly option: string,
    problem: string,
    fix: string,
  ) {
    super(`BemiModule option "${option}" ${problem}`, fix && `${fix.replace(/\.$/, '')}.`);
  }
}

/** Validates the module options once, at startup, and fills every default. */
export function validateBemiOptions(options: BemiModuleOptions | undefined | null): BemiResolvedOptions {
  const o = (options ?? {}) as Record<string, unknown>;
  if (typeof o !== 'object' || Array.isArray(o)) {
    throw new BemiOptionsError('(options)', `must be an object, got ${describe(o)}`, 'Pass BemiModule.forRoot({ ... }) or no argument.');
  }
  for (const key of Object.keys(o)) {
    // ConfigurableModuleBuilder adds `isGlobal`-style extras; anything else is most likely a typo.
    if (!KNOWN_OPTIONS.has(key) && key !== 'isGlobal') {
      throw new BemiOptionsError(key, 'is not a known option', `Known options: ${[...KNOWN_OPTIONS].join(', ')}.`);
    }
  }
  if (o.context !== undefined && typeof o.context !== 'function') {
    throw new BemiOptionsError('context', `must be a function (req, ctx) => object, got ${describe(o.context)}`, 'Example: context: (req) => ({ userId: req.user?.id }).');
  }
  for (const flag of ['defaultContext', 'attachToOrm'] as const) {
    if (o[flag] !== undefined && typeof o[flag] !== 'boolean') {
      throw new BemiOptionsError(flag, `must be true or false, got ${describe(o[flag])}`, `Remove it to use the default (true).`);
    }
  }
  const max = o.maxContextSize;
  if (max !== undefined && (typeof max !== 'number' || !Number.isInteger(max) || max < 2)) {
    throw new BemiOptionsError('maxContextSize', `must be a whole number of bytes of at least 2, got ${describe(max)}`, `Remove it to use the default (${DEFAULT_MAX_CONTEXT_SIZE}).`);
  }
  // Fails at startup, naming the capture option at fault (the worker itself starts later).
  const capture = o.capture === undefined ? undefined : checkCaptureOptions(o.capture as NonNullable<BemiModuleOptions['capture']>);
  if (o.history !== undefined) {
    if (!o.history || typeof o.history !== 'object' || Array.isArray(o.history)) {
      throw new BemiOptionsError('history', `must be an object, got ${describe(o.history)}`, 'Example: history: { schema: "audit" }.');
    }
    for (const [key, value] of Object.entries(o.history)) {
      if (!(TRAIL_LOCATION_KEYS as readonly string[]).includes(key) || typeof value !== 'string' || !value) {
        throw new BemiOptionsError(`history.${key}`, `must be one of ${TRAIL_LOCATION_KEYS.join(', ')}, as a non-empty string`, 'Remove it to use the default (the capture schema, "changes").');
      }
    }
  }
  const redact = o.redactContextKeys;
  if (redact !== undefined && redact !== false && !(Array.isArray(redact) && redact.every((k) => typeof k === 'string' && k.trim().length > 0))) {
    throw new BemiOptionsError('redactContextKeys', `must be a list of words or false, got ${describe(redact)}`, 'Example: redactContextKeys: [...DEFAULT_REDACTED_CONTEXT_KEYS, "iban"].');
  }
  if (o.rules !== undefined) asOptionsError(() => checkRules(o.rules));
  const retention = o.retention === undefined ? undefined : resolveRetentionOptions(o.retention as NonNullable<BemiModuleOptions['retention']>);
  if (o.rules !== undefined && o.capture && typeof o.capture === 'object' && 'rules' in o.capture) {
    throw new BemiOptionsError('capture.rules', 'is set together with rules', 'Inside the module give the rules once, as BemiModule.forRoot({ rules }) (it also reads entity decorators).');
  }
  return {
    context: o.context as BemiResolvedOptions['context'],
    defaultContext: (o.defaultContext as boolean | undefined) ?? true,
    maxContextSize: (max as number | undefined) ?? DEFAULT_MAX_CONTEXT_SIZE,
    attachToOrm: (o.attachToOrm as boolean | undefined) ?? true,
    ...(capture ? { capture } : {}),
    trail: resolveTrailLocation(o.history as TrailLocationOptions | undefined, capture?.schema),
    redactContextKeys: redact === undefined ? DEFAULT_REDACTED_CONTEXT_KEYS : (redact as string[] | false),
    ...(o.rules !== undefined ? { rules: o.rules as BemiResolvedOptions['rules'] } : {}),
    ...(retention ? { retention } : {}),
  };
}

/** Runs `check`, reporting a rules problem as the module's own options error. */
export function asOptionsError<T>(check: () => T): T {
  try {
    return check();
  } catch (error) {
    if (error instanceof BemiRulesError) throw new BemiOptionsError(error.path, error.problem, error.fix);
    throw error;
  }
}

function describe(value: unknown): string {
  if (value === null) return 'null';
  if (Array.isArray(value)) return 'an array';
  return typeof value === 'string' ? `the string "${value}"` : typeof value;
}
