import type { ClientConfig } from 'pg';
import { BemiRulesError, compileRules } from '../rules/rules-compiler';
import type { BemiRules, CompiledRules } from '../rules/rules.interfaces';
import { BemiError } from '../shared/bemi-error';
import { DEFAULT_SCHEMA } from '../shared/postgres-names';
import { checkChainOption, type BemiChainOption, type ResolvedChainOption } from './chain-options';
import { CAPTURE_DEFAULTS, DEFAULT_LAG_LIMIT_BYTES, DEFAULT_LAG_LIMIT_SECONDS, DEFAULT_PUBLICATION_NAME } from './defaults';

/** Where log lines go. Nest's `Logger` fits; the CLI prints to the console. */
export interface CaptureLogger {
  log(message: string): void;
  warn(message: string): void;
  error(message: string): void;
}

/** Options of the change-capture worker (`BemiModule.forRoot({ capture })` or the CLI). */
export interface BemiCaptureOptions {
  /**
   * The tracked database (a connection URL or `pg` ClientConfig). Its role needs the REPLICATION
   * attribute. Inside the module, defaults to the MikroORM connection.
   */
  source?: string | ClientConfig;
  /** Where `changes` is written. Default: the source database. */
  destination?: string | ClientConfig;
  /** Schema of `changes` and `_bemi_capture_state` in the destination. Default `public`. */
  schema?: string;
  /** Source schemas whose tables are captured (match the trigger migration's). Default `['public']`. */
  schemas?: string[];
  /** Table names never captured, besides `changes`, `mikro_orm_migrations` and `_bemi*`. */
  excludeTables?: string[];
  /**
   * Replication slot (created when missing, never dropped by the worker). Slots are per server, so
   * the default is per database: `nestjs_bemi_<database>` (see `defaultSlotName`), or `nestjs_bemi`
   * when this database already has a slot of that name (the default before 0.2, kept so existing
   * trails resume where they stopped).
   */
  slotName?: string;
  /** Publication listing the captured tables (created and kept in sync). Default `nestjs_bemi`. */
  publicationName?: string;
  /** Create `changes` and `_bemi_capture_state` when missing. When false, refuse to start instead. Default true. */
  ensureSchema?: boolean;
  /** With `ensureSchema`: also index `before`/`after` (GIN). Default false: it slows ingest. */
  indexBeforeAfter?: boolean;
  /**
   * Store the context on every row, as before `context_seq` existed. Default false: the rows of a
   * transaction and table that share a context store it once, on the first of them, and readers
   * (history, `BemiChange`, the `changes_with_context` view) resolve it for every row. Turn it on
   * only for tools that read `changes.context` directly (docs/capture.md, "Context storage").
   */
  contextPerRow?: boolean;
  /** Rows per destination write; at most three batches are in memory (the worker's memory bound). Default 2000. */
  batchSize?: number;
  /** Longest time finished transactions wait to be batched with later ones, in ms. Default 200. */
  maxBatchDelayMs?: number;
  /** Interval of status updates to the server and of idle heartbeats, in ms. Default 10000. */
  heartbeatIntervalMs?: number;
  /** Emit a `_bemi_heartbeat` logical message on the source when idle, so the slot keeps moving. Default true. */
  heartbeatMessages?: boolean;
  /** Interval of progress log lines (changes/s, lag), in ms; 0 turns them off (lag warnings are then checked every 5 s). Default 5000. */
  progressIntervalMs?: number;
  /** Warn when the worker is this many bytes of WAL behind. Default 64 MiB. */
  lagWarningBytes?: number;
  /** Warn when the oldest unstored transaction committed this many seconds ago. Default 60. */
  lagWarningSeconds?: number;
  /** How often the publication is re-synced with the tracked tables, in ms. Default 30000. */
  publicationRefreshMs?: number;
  /** Reconnect backoff: first delay and cap, in ms. Default 500 and 30000. */
  reconnectDelayMs?: number;
  maxReconnectDelayMs?: number;
  /** Log sink. Default: Nest's Logger with context `BemiCapture`. */
  logger?: CaptureLogger;
  /**
   * Redaction and ignore rules, with database column names (the CLI's `--rules` file). Inside the
   * module use `BemiModule.forRoot({ rules })` instead: it also reads the entity decorators.
   */
  rules?: BemiRules | CompiledRules;
  /**
   * Database roles whose context is believed: a change's context is stored as the actor only when
   * the role its session acted as, or the role that logged in, is one of these. Context from any
   * other role is kept under `"_bemi"."untrusted"` (docs/security.md). Default: the roles that own
   * the trigger functions (the role the trigger migration ran as) and the worker's source role.
   */
  trustedRoles?: string[];
  /**
   * Hash chain over the trail, for `BemiHistory.verify()` / `nestjs-bemi verify` (docs/verify.md):
   * `true` links each change to the one before with SHA-256, `{ key }` with HMAC-SHA256 (a role
   * that can edit `changes` but lacks the key cannot forge links). Default off.
   */
  chain?: BemiChainOption;
}

export interface ResolvedCaptureOptions {
  source: ClientConfig;
  destination: ClientConfig;
  schema: string;
  schemas: string[];
  excludeTables: string[];
  /** Undefined: the worker derives it from the source database when it starts. */
  slotName?: string;
  publicationName: string;
  ensureSchema: boolean;
  indexBeforeAfter: boolean;
  contextPerRow: boolean;
  batchSize: number;
  maxBatchDelayMs: number;
  heartbeatIntervalMs: number;
  heartbeatMessages: boolean;
  progressIntervalMs: number;
  lagWarningBytes: number;
  lagWarningSeconds: number;
  publicationRefreshMs: number;
  reconnectDelayMs: number;
  maxReconnectDelayMs: number;
  logger?: CaptureLogger;
  rules?: CompiledRules;
  /** Undefined: the default (see BemiCaptureOptions.trustedRoles), read from the source. */
  trustedRoles?: string[];
  /** Undefined: the chain is off. */
  chain?: ResolvedChainOption;
}

/** Thrown when capture options are wrong; the message names the option and the fix. */
export class BemiCaptureOptionsError extends BemiError {
  constructor(
    readonly option: string,
    problem: string,
    fix = '',
  ) {
    super(`Capture option "${option}" ${problem}${fix ? '' : '.'}`, fix);
  }
}

const KNOWN = new Set([
  'source', 'destination', 'schema', 'schemas', 'excludeTables', 'slotName', 'publicationName', 'ensureSchema',
  'indexBeforeAfter', 'contextPerRow', 'batchSize', 'maxBatchDelayMs', 'heartbeatIntervalMs', 'heartbeatMessages', 'progressIntervalMs',
  'lagWarningBytes', 'lagWarningSeconds', 'publicationRefreshMs', 'reconnectDelayMs', 'maxReconnectDelayMs', 'logger', 'rules', 'trustedRoles', 'chain',
]);

/** Validated options whose connections may still be missing (the module can supply MikroORM's). */
export type CheckedCaptureOptions = Omit<ResolvedCaptureOptions, 'source' | 'destination'> & { source?: ClientConfig; destination?: ClientConfig };

/** Validates and fills defaults; `source` may still be missing. Throws BemiCaptureOptionsError. */
export function checkCaptureOptions(input: BemiCaptureOptions): CheckedCaptureOptions {
  if (!input || typeof input !== 'object' || Array.isArray(input)) throw new BemiCaptureOptionsError('capture', 'must be an object');
  for (const key of Object.keys(input)) {
    if (!KNOWN.has(key)) throw new BemiCaptureOptionsError(key, `is not a known option (known: ${[...KNOWN].join(', ')})`);
  }
  const o = input as Record<string, unknown>;
  const source = o.source === undefined ? undefined : connection(o.source, 'source');
  const destination = o.destination === undefined ? undefined : connection(o.destination, 'destination');
  return {
    source,
    destination,
    schema: name(o.schema ?? DEFAULT_SCHEMA, 'schema'),
    schemas: names(o.schemas ?? [DEFAULT_SCHEMA], 'schemas', false),
    excludeTables: names(o.excludeTables ?? [], 'excludeTables', true),
    slotName: o.slotName === undefined ? undefined : identifier(o.slotName, 'slotName', /^[a-z0-9_]{1,63}$/, 'lower-case letters, digits and "_", at most 63'),
    publicationName: name(o.publicationName ?? DEFAULT_PUBLICATION_NAME, 'publicationName'),
    ensureSchema: flag(o.ensureSchema, 'ensureSchema', true),
    indexBeforeAfter: flag(o.indexBeforeAfter, 'indexBeforeAfter', false),
    contextPerRow: flag(o.contextPerRow, 'contextPerRow', false),
    heartbeatMessages: flag(o.heartbeatMessages, 'heartbeatMessages', true),
    batchSize: int(o.batchSize, 'batchSize', CAPTURE_DEFAULTS.batchSize, 1),
    maxBatchDelayMs: int(o.maxBatchDelayMs, 'maxBatchDelayMs', CAPTURE_DEFAULTS.maxBatchDelayMs, 0),
    heartbeatIntervalMs: int(o.heartbeatIntervalMs, 'heartbeatIntervalMs', CAPTURE_DEFAULTS.heartbeatIntervalMs, 50),
    progressIntervalMs: int(o.progressIntervalMs, 'progressIntervalMs', CAPTURE_DEFAULTS.progressIntervalMs, 0),
    lagWarningBytes: int(o.lagWarningBytes, 'lagWarningBytes', DEFAULT_LAG_LIMIT_BYTES, 0),
    lagWarningSeconds: int(o.lagWarningSeconds, 'lagWarningSeconds', DEFAULT_LAG_LIMIT_SECONDS, 0),
    publicationRefreshMs: int(o.publicationRefreshMs, 'publicationRefreshMs', CAPTURE_DEFAULTS.publicationRefreshMs, 0),
    reconnectDelayMs: int(o.reconnectDelayMs, 'reconnectDelayMs', CAPTURE_DEFAULTS.reconnectDelayMs, 1),
    maxReconnectDelayMs: int(o.maxReconnectDelayMs, 'maxReconnectDelayMs', CAPTURE_DEFAULTS.maxReconnectDelayMs, 1),
    logger: logger(o.logger),
    rules: rules(o.rules),
    trustedRoles: o.trustedRoles === undefined ? undefined : names(o.trustedRoles, 'trustedRoles', false),
    chain: checkChainOption(o.chain, (option, problem, fix) => {
      throw new BemiCaptureOptionsError(option, problem, fix);
    }),
  };
}

/** Validates, fills defaults and settles the connections (destination defaults to source). */
export function resolveCaptureOptions(input: BemiCaptureOptions, fallbackSource?: ClientConfig): ResolvedCaptureOptions {
  return settleCaptureConnections(checkCaptureOptions(input), fallbackSource);
}

/** Checked options with their connections settled: `source` (or the fallback), `destination` defaulting to it. */
export function settleCaptureConnections(checked: CheckedCaptureOptions, fallbackSource?: ClientConfig): ResolvedCaptureOptions {
  const source = checked.source ?? fallbackSource;
  if (!source) throw new BemiCaptureOptionsError('source', 'is required (a postgres:// URL of the tracked database)');
  return { ...checked, source, destination: checked.destination ?? source };
}

function connection(value: unknown, option: string): ClientConfig {
  if (typeof value === 'string' && value.length > 0) {
    // pg would read a non-URL as a host name ("getaddrinfo ENOTFOUND base" for 'not a url').
    // The value is not echoed: it may hold a password.
    let protocol = '';
    try {
      protocol = new URL(value).protocol;
    } catch {
      protocol = '';
    }
    if (protocol !== 'postgres:' && protocol !== 'postgresql:') {
      throw new BemiCaptureOptionsError(option, 'must be a postgres:// (or postgresql://) URL such as postgres://user:password@host:5432/database, or a pg ClientConfig object; got a string that is not one');
    }
    return { connectionString: value };
  }
  if (value && typeof value === 'object' && !Array.isArray(value)) return { ...(value as ClientConfig) };
  throw new BemiCaptureOptionsError(option, 'must be a postgres:// URL or a pg ClientConfig object');
}

function identifier(value: unknown, option: string, pattern: RegExp, rule: string): string {
  if (typeof value !== 'string' || !pattern.test(value)) throw new BemiCaptureOptionsError(option, `must be ${rule} characters, got ${JSON.stringify(value)}`);
  return value;
}

function name(value: unknown, option: string): string {
  if (typeof value !== 'string' || value.length === 0 || value.length > 63 || value.includes('\u0000')) {
    throw new BemiCaptureOptionsError(option, `must be a name of 1-63 characters, got ${JSON.stringify(value)}`);
  }
  return value;
}

function names(value: unknown, option: string, allowEmpty: boolean): string[] {
  if (!Array.isArray(value) || (!allowEmpty && value.length === 0)) throw new BemiCaptureOptionsError(option, `must be a${allowEmpty ? 'n' : ' non-empty'} array of names`);
  return [...new Set(value.map((v) => name(v, option)))];
}

function flag(value: unknown, option: string, fallback: boolean): boolean {
  if (value === undefined) return fallback;
  if (typeof value !== 'boolean') throw new BemiCaptureOptionsError(option, `must be true or false, got ${typeof value}`);
  return value;
}

function int(value: unknown, option: string, fallback: number, min: number): number {
  if (value === undefined) return fallback;
  if (typeof value !== 'number' || !Number.isInteger(value) || value < min) throw new BemiCaptureOptionsError(option, `must be a whole number of at least ${min}, got ${JSON.stringify(value)}`);
  return value;
}

function rules(value: unknown): CompiledRules | undefined {
  if (value === undefined) return undefined;
  if (value && typeof value === 'object' && (value as CompiledRules).tables instanceof Map) return value as CompiledRules;
  try {
    return compileRules(value as BemiRules);
  } catch (error) {
    if (error instanceof BemiRulesError) throw new BemiCaptureOptionsError(error.path, `${error.problem}. ${error.fix.replace(/\.$/, '')}`);
    throw error;
  }
}

function logger(value: unknown): CaptureLogger | undefined {
  if (value === undefined) return undefined;
  const l = value as CaptureLogger;
  if (!l || typeof l.log !== 'function' || typeof l.warn !== 'function' || typeof l.error !== 'function') {
    throw new BemiCaptureOptionsError('logger', 'must have log, warn and error methods');
  }
  return l;
}
