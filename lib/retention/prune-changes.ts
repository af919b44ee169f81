import { Client, type ClientConfig } from 'pg';
import { CHANGES_TABLE, retentionHorizonTableSql } from '../trail/changes-table';
import { chainAnchorTableSql } from '../trail/chain-anchor';
import { RETENTION_SETTING } from '../trail/append-only';
import { dropPartition, partitionWhollyExpired, rangePartitions } from './changes-partitions';
import { BemiRetentionOptionsError, parseRetentionDuration } from '../options/duration';
import { checkBatchSize } from '../options/retention-options';
import { retentionSql } from './retention.sql';
import { DEFAULT_SCHEMA } from '../shared/postgres-names';

/** Where pruning reports; Nest's Logger fits. */
export interface RetentionLogger {
  log(message: string): void;
  warn(message: string): void;
}

export interface PruneChangesOptions {
  /** Schema of the changes table (capture's `schema`). Default `public`. */
  schema?: string;
  /** Name of the changes table (history's `table`). Default `changes`. */
  table?: string;
  /** Default maximum age ('365d', '12h', '30m' or milliseconds); absent: only `perTable` tables are pruned. */
  maxAge?: string | number;
  /** Per trail table maximum age; null keeps that table forever. Overrides maxAge. */
  perTable?: Record<string, string | number | null>;
  /** Prune only these trail tables. Default: every table in the trail. */
  tables?: string[];
  /** Rows per batch (one short transaction each). Default 5000. */
  batchSize?: number;
  /** Count what would be pruned; delete nothing. */
  dryRun?: boolean;
  /** The instant ages are measured from. Default: the database's now(). */
  now?: Date | string;
  logger?: RetentionLogger;
  /** Stops between batches when aborted (application shutdown). */
  signal?: AbortSignal;
}

export interface PruneTableResult {
  /** Trail table (the `table` column). */
  table: string;
  /** Changes committed before this instant were pruned. */
  cutoff: string;
  /** Rows deleted by batched DELETEs (in a dry run: rows that would be). */
  rows: number;
  batches: number;
}

export interface PrunePartitionResult {
  name: string;
  upperBound: string;
  rows: number;
}

export interface PruneResult {
  dryRun: boolean;
  /** All rows pruned (or, in a dry run, that would be): batched deletes plus dropped partitions. */
  rows: number;
  batches: number;
  tables: PruneTableResult[];
  /** Partitions dropped whole (or, in a dry run, that would be). */
  partitions: PrunePartitionResult[];
  elapsedMs: number;
  /** Set when nothing ran because another pruning run holds the lock. */
  skipped?: 'locked';
  /** True when the signal stopped the run between batches. */
  stopped: boolean;
}

const silent: RetentionLogger = { log: () => undefined, warn: () => undefined };

/**
 * Deletes changes older than their table's cutoff in bounded batches, each its own short
 * transaction, logging a line per batch. On a `changes` table partitioned by range of
 * committed_at, partitions wholly older than the cutoffs are detached and dropped first.
 * One run at a time per table (a session advisory lock); a second run returns `skipped`.
 */
export async function pruneChanges(connection: string | ClientConfig, options: PruneChangesOptions): Promise<PruneResult> {
  const started = Date.now();
  const schema = options.schema ?? DEFAULT_SCHEMA;
  const table = options.table ?? CHANGES_TABLE;
  const maxAgeMs = options.maxAge === undefined || options.maxAge === null ? null : parseRetentionDuration(options.maxAge, 'maxAge');
  const perTableMs: Record<string, number | null> = {};
  for (const [t, age] of Object.entries(options.perTable ?? {})) perTableMs[t] = age === null ? null : parseRetentionDuration(age, `perTable.${t}`);
  if (maxAgeMs === null && !Object.values(perTableMs).some((ms) => ms !== null)) {
    throw new BemiRetentionOptionsError('maxAge', 'is missing and no perTable entry has a duration', 'Give maxAge (e.g. "365d") or a perTable duration.');
  }
  const batchSize = checkBatchSize(options.batchSize, 'batchSize');
  const logger = options.logger ?? silent;
  const dryRun = options.dryRun === true;
  const sql = retentionSql(schema, table);
  const qualified = sql.relation;
  const result: PruneResult = { dryRun, rows: 0, batches: 0, tables: [], partitions: [], elapsedMs: 0, stopped: false };

  const client = new Client(typeof connection === 'string' ? { connectionString: connection } : connection);
  await client.connect();
  try {
    // This session's deletes are retention's own: the append-only guard (if installed) lets them through.
    await client.query(`SELECT pg_catalog.set_config($1, 'on', false)`, [RETENTION_SETTING]);
    const { rows: lock } = await client.query<{ locked: boolean }>(sql.tryLock, [sql.lockKey]);
    if (!lock[0].locked) {
      logger.warn(`Another pruning run holds the lock on ${qualified}; this run is skipped.`);
      return { ...result, skipped: 'locked', elapsedMs: Date.now() - started };
    }
    const { rows: described } = await client.query<{ kind: string | null; partition_key: string | null; has_index: boolean }>(sql.describe, [qualified]);
    if (described.length === 0) {
      throw new Error(`No table ${qualified}: check the schema and table options (capture "schema", history "table") or start capture once to create it.`);
    }
    const { kind, partition_key: partitionKey, has_index: hasIndex } = described[0];
    if (!hasIndex) {
      logger.warn(
        `${qualified} has no index on ("table", committed_at): every batch reads the table's whole trail. ` +
          `Create one: CREATE INDEX CONCURRENTLY _bemi_changes_table_committed_at ON ${qualified} ("table", committed_at);`,
      );
    }

    // Pruning makes moments before what it deletes unanswerable: the horizon says so to history.
    // A trail created before the horizon table existed gets it now.
    let horizons = (await client.query<{ exists: boolean }>(sql.horizonExists, [sql.horizonRelation])).rows[0].exists;
    if (!horizons && !dryRun) {
      try {
        await client.query(retentionHorizonTableSql(schema));
        horizons = true;
      } catch (e) {
        logger.warn(
          `Could not create ${sql.horizonRelation} (${(e as Error).message}): history will not know which moments this run made unanswerable, and may answer for them from an incomplete trail. ` +
            `Run bemiChangesTableSql().up as the trail's owner.`,
        );
      }
    }

    // A chained trail: each deletion moves the chain's anchor in the same statement, so verify
    // knows where the trail now starts (docs/verify.md). A trail without the anchor table gets it.
    const chain = (await client.query<{ chained: boolean; anchors: boolean }>(sql.chainExists, [qualified, sql.anchorRelation])).rows[0];
    let anchors = chain.chained && chain.anchors;
    if (chain.chained && !chain.anchors && !dryRun) {
      try {
        await client.query(chainAnchorTableSql(schema));
        anchors = true;
      } catch (e) {
        logger.warn(`Could not create ${sql.anchorRelation} (${(e as Error).message}): verify will report the pruned changes as deleted. Run bemiChangesTableSql().up as the trail's owner.`);
      }
    }

    // Cutoffs are computed in SQL so they keep timestamptz's microseconds.
    const now = options.now === undefined ? (await client.query<{ now: string }>('SELECT now()::text AS now')).rows[0].now : new Date(options.now).toISOString();
    const cutoffByMs = new Map<number, string>();
    const cutoffFor = async (ms: number): Promise<string> => {
      if (!cutoffByMs.has(ms)) cutoffByMs.set(ms, (await client.query<{ cutoff: string }>(sql.cutoff, [now, ms])).rows[0].cutoff);
      return cutoffByMs.get(ms)!;
    };
    const only = options.tables ? new Set(options.tables) : undefined;
    const ageOf = (t: string): number | null => {
      if (only && !only.has(t)) return null;
      return Object.prototype.hasOwnProperty.call(perTableMs, t) ? perTableMs[t] : maxAgeMs;
    };
    const trail = (await client.query<{ table: string }>(sql.trailTables(qualified))).rows.map((r) => r.table);
    const cutoffs = new Map<string, string>();
    for (const t of new Set([...trail, ...(options.tables ?? [])])) {
      const ms = ageOf(t);
      if (ms !== null) cutoffs.set(t, await cutoffFor(ms));
    }

    const deleteBatch = kind === 'p' ? sql.deleteBatchPartitioned(horizons, anchors) : sql.deleteBatch(horizons, anchors);
    const dropped: number[] = [];
    if (kind === 'p' && partitionKey !== null && /^RANGE \(committed_at\)$/i.test(partitionKey)) {
      for (const partition of await rangePartitions(client, sql, qualified)) {
        if (!(await partitionWhollyExpired(client, sql, partition, (t) => cutoffs.get(t) ?? null, [...cutoffs.values()]))) continue;
        const t0 = Date.now();
        let rows: number | null;
        if (dryRun) {
          rows = Number((await client.query<{ rows: string }>(sql.countAll(partition.name))).rows[0].rows);
        } else {
          try {
            rows = await dropPartition(client, sql, partition, horizons, anchors);
          } catch (e) {
            throw new Error(`Dropping partition ${partition.name} failed (if it is detached, drop it by hand): ${(e as Error).message}`);
          }
          if (rows === null) {
            logger.warn(`Partition ${partition.name} could not be detached (lock_timeout): its rows are pruned in batches instead.`);
            continue;
          }
        }
        dropped.push(partition.oid);
        result.partitions.push({ name: partition.name, upperBound: partition.upperBound, rows });
        result.rows += rows;
        logger.log(`${dryRun ? 'Would drop' : 'Dropped'} partition ${partition.name} (committed_at before ${partition.upperBound}): ${rows} rows, ${Date.now() - t0} ms.`);
      }
    }

    for (const [t, cutoff] of cutoffs) {
      if (options.signal?.aborted) {
        result.stopped = true;
        break;
      }
      const entry: PruneTableResult = { table: t, cutoff, rows: 0, batches: 0 };
      result.tables.push(entry);
      if (dryRun) {
        entry.rows = Number((await client.query<{ rows: string }>(sql.count, [t, cutoff, dropped])).rows[0].rows);
        result.rows += entry.rows;
        logger.log(`Would prune ${entry.rows} changes of "${t}" committed before ${cutoff}.`);
        continue;
      }
      let from = '-infinity';
      for (;;) {
        const t0 = Date.now();
        const { rows } = await client.query<{ rows: number; last: string | null }>(deleteBatch, [t, from, cutoff, batchSize]);
        const n = rows[0].rows;
        if (n > 0) {
          entry.rows += n;
          entry.batches += 1;
          result.rows += n;
          result.batches += 1;
          from = rows[0].last!;
          logger.log(`Pruned ${n} changes of "${t}" committed before ${cutoff} in ${Date.now() - t0} ms (batch ${entry.batches}, ${entry.rows} so far).`);
        }
        if (n < batchSize) break;
        if (options.signal?.aborted) {
          result.stopped = true;
          break;
        }
      }
      if (result.stopped) break;
    }
    await client.query(sql.unlock, [sql.lockKey]);
  } finally {
    await client.end().catch(() => undefined);
  }
  result.elapsedMs = Date.now() - started;
  return result;
}
