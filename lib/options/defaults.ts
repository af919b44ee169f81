// Every default of every option, in one place: the validators, the services, the CLI and the
// docs' tables read them from here, so a changed default cannot drift between them.

/** Largest encoded context attached to one statement, in UTF-8 bytes. */
export const DEFAULT_MAX_CONTEXT_SIZE = 1_000_000;

/**
 * Context keys masked by default. A key is secret when, lower-cased and without `-`, `_`, `.` and
 * spaces, it contains one of these words: `accessToken`, `x-api-key`, `Authorization`,
 * `passwordConfirmation` all match. Masking a harmless key costs little; leaking a token into an
 * append-only audit trail cannot be undone.
 */
export const DEFAULT_REDACTED_CONTEXT_KEYS: readonly string[] = Object.freeze([
  'password',
  'passwd',
  'secret',
  'token',
  'authorization',
  'cookie',
  'apikey',
  'privatekey',
  'creditcard',
  'cardnumber',
  'cvv',
  'ssn',
]);

/** Name of the publication, and the stem of the per-database slot name (`nestjs_bemi_<database>`). */
export const DEFAULT_PUBLICATION_NAME = 'nestjs_bemi';
/** The slot name every release before 0.2 used, for every database (still resumed when present). */
export const LEGACY_SLOT_NAME = 'nestjs_bemi';

/** Capture tuning; durations are milliseconds (`*Ms`). */
export const CAPTURE_DEFAULTS = Object.freeze({
  batchSize: 2000,
  maxBatchDelayMs: 200,
  heartbeatIntervalMs: 10_000,
  progressIntervalMs: 5000,
  publicationRefreshMs: 30_000,
  reconnectDelayMs: 500,
  maxReconnectDelayMs: 30_000,
});

/**
 * How far behind capture may fall before it warns (capture's `lagWarning*`) and before the health
 * indicator reports `down` (its `maxLag*`): one limit, two uses.
 */
export const DEFAULT_LAG_LIMIT_BYTES = 64 * 1024 * 1024;
export const DEFAULT_LAG_LIMIT_SECONDS = 60;

/** How often retention prunes (`retention.interval`), in ms. */
export const DEFAULT_RETENTION_INTERVAL_MS = 3_600_000;
/** Rows deleted per retention batch. */
export const DEFAULT_PRUNE_BATCH_SIZE = 5000;
/** Upper bound of a batch: a batch is one transaction, and it has to stay short. */
export const MAX_PRUNE_BATCH_SIZE = 100_000;
