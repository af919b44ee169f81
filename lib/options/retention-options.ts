import { DEFAULT_PRUNE_BATCH_SIZE, DEFAULT_RETENTION_INTERVAL_MS, MAX_PRUNE_BATCH_SIZE } from './defaults';
import { BemiRetentionOptionsError, parseRetentionDuration } from './duration';

/** `BemiModule.forRoot({ retention })`: how long changes are kept and how often old ones are pruned. */
export interface BemiRetentionOptions {
  /** Changes committed longer ago than this are deleted: '365d', '12h', '30m' (or milliseconds). No default: without it only `perTable` tables are pruned. */
  maxAge?: string | number;
  /** Per trail table (the `table` column of `changes`): its own maximum age, or `null` to keep its changes forever. Overrides `maxAge`. */
  perTable?: Record<string, string | number | null>;
  /** How often the pruning job runs. Default '1h'; the first run starts right after bootstrap. */
  interval?: string | number;
  /** Rows deleted per batch; each batch is its own short transaction. Default 5000. */
  batchSize?: number;
}

/** Retention options after validation, durations in milliseconds. */
export interface ResolvedRetentionOptions {
  /** Default maximum age; null when only `perTable` tables are pruned. */
  maxAgeMs: number | null;
  /** Per-table maximum ages; null keeps that table's changes forever. */
  perTableMs: Record<string, number | null>;
  intervalMs: number;
  batchSize: number;
}

const KNOWN = new Set(['maxAge', 'perTable', 'interval', 'batchSize']);

/** Validates and fills defaults; throws BemiRetentionOptionsError naming the option and the fix. */
export function resolveRetentionOptions(input: BemiRetentionOptions): ResolvedRetentionOptions {
  if (!input || typeof input !== 'object' || Array.isArray(input)) {
    throw new BemiRetentionOptionsError('retention', 'must be an object', 'Example: retention: { maxAge: "365d" }.');
  }
  for (const key of Object.keys(input)) {
    if (!KNOWN.has(key)) throw new BemiRetentionOptionsError(key, 'is not a known option', `Known options: ${[...KNOWN].join(', ')}.`);
  }
  const maxAgeMs = input.maxAge === undefined ? null : parseRetentionDuration(input.maxAge, 'maxAge');
  const perTableMs = checkPerTable(input.perTable);
  if (maxAgeMs === null && !Object.values(perTableMs).some((ms) => ms !== null)) {
    throw new BemiRetentionOptionsError('maxAge', 'is missing and no perTable entry has a duration, so nothing would ever be pruned', 'Set maxAge (e.g. "365d") or give perTable a duration per table, or remove retention.');
  }
  const intervalMs = input.interval === undefined ? DEFAULT_RETENTION_INTERVAL_MS : parseRetentionDuration(input.interval, 'interval');
  const batchSize = checkBatchSize(input.batchSize, 'batchSize');
  return { maxAgeMs, perTableMs, intervalMs, batchSize };
}

/** Checks a batch size (the CLI's --batch-size too); undefined gives the default. */
export function checkBatchSize(value: unknown, option: string): number {
  if (value === undefined) return DEFAULT_PRUNE_BATCH_SIZE;
  if (typeof value !== 'number' || !Number.isInteger(value) || value < 1 || value > MAX_PRUNE_BATCH_SIZE) {
    throw new BemiRetentionOptionsError(option, `must be a whole number from 1 to ${MAX_PRUNE_BATCH_SIZE}, got ${JSON.stringify(value)}`, `Remove it to use the default (${DEFAULT_PRUNE_BATCH_SIZE}).`);
  }
  return value;
}

function checkPerTable(value: unknown): Record<string, number | null> {
  if (value === undefined) return {};
  if (!value || typeof value !== 'object' || Array.isArray(value)) {
    throw new BemiRetentionOptionsError('perTable', 'must be an object of table name to duration (or null)', 'Example: perTable: { orders: "7d", invoices: null }.');
  }
  const out: Record<string, number | null> = {};
  for (const [table, age] of Object.entries(value)) {
    if (table.length === 0 || table.length > 63) {
      throw new BemiRetentionOptionsError('perTable', `has a key that is not a table name: ${JSON.stringify(table)}`, 'Keys are table names as stored in the "table" column of changes (1-63 characters).');
    }
    out[table] = age === null ? null : parseRetentionDuration(age, `perTable.${table}`);
  }
  return out;
}
