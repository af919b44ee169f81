import { quoteIdent } from '../shared/sql-quote';
import { RETENTION_HORIZON_TABLE } from '../trail/changes-table';
import { CHAIN_ANCHOR_TABLE } from '../trail/chain-anchor';

/** The SQL pruning runs, for one `changes` table (`schema`.`table`). The single place it lives. */
export interface RetentionSql {
  /** The changes table, quoted. */
  relation: string;
  /** Key of the session-level advisory lock that keeps two pruning runs on this table apart. */
  lockKey: string;
  /** $1 lock key → { locked } */
  tryLock: string;
  unlock: string;
  /** $1 the changes table (qualified text) → { kind ('r' | 'p' | null), partition_key, has_index } */
  describe: string;
  /** $1 instant (text), $2 age in ms → { cutoff } as text, microseconds kept */
  cutoff: string;
  /** → the distinct trail tables, through the leading "table" column of an existing index */
  trailTables(relation: string): string;
  /** $1 trail table, $2 cutoff, $3 excluded partition oids → { rows } */
  count: string;
  /**
   * $1 trail table, $2 keyset lower bound, $3 cutoff, $4 batch size → { rows, last }. With
   * `horizons`, the same statement raises the table's horizon to the latest commit time it deleted.
   */
  deleteBatch(horizons: boolean, anchors?: boolean): string;
  /** The same for a partitioned table. */
  deleteBatchPartitioned(horizons: boolean, anchors?: boolean): string;
  /** The anchor table, quoted. */
  anchorRelation: string;
  /** $1 the changes table, $2 the anchor table (qualified text) → { chained, anchors }: whether the trail has the chain columns and the anchor table */
  chainExists: string;
  /** Moves each database's anchor up to the newest chained change the (still attached) partition holds. */
  recordPartitionAnchors(partition: string): string;
  /** The horizon table, quoted. */
  horizonRelation: string;
  /** $1 the horizon table (qualified text) → { exists } */
  horizonExists: string;
  /** Raises each table's horizon to the latest commit time the (still attached) partition holds for it. */
  recordPartitionHorizons(partition: string): string;
  /** $1 the changes table (qualified text) → its direct partitions with their bound expression */
  partitions: string;
  /** $1 upper bound (text), $2 cutoffs (text[]) → { older }: the bound is at or before every cutoff */
  boundBeforeAll: string;
  detach(partition: string): string;
  drop(partition: string): string;
  countAll(relation: string): string;
}

export function retentionSql(schema: string, table: string): RetentionSql {
  const relation = `${quoteIdent(schema)}.${quoteIdent(table)}`;
  const horizonRelation = `${quoteIdent(schema)}.${quoteIdent(RETENTION_HORIZON_TABLE)}`;
  // Never lowers a horizon: an earlier, wider pruning stays known.
  const raise = `ON CONFLICT ("table") DO UPDATE SET horizon = GREATEST(${horizonRelation}.horizon, EXCLUDED.horizon), updated_at = now()`;
  const recordGone = (horizons: boolean, anchors = false) =>
    (horizons
      ? `, horizon AS (
        INSERT INTO ${horizonRelation} ("table", horizon) SELECT $1, max(committed_at) FROM gone HAVING count(*) > 0 ${raise}
      )`
      : '') + (anchors ? `, anchor AS (${anchorFrom('gone')})` : '');
  // The newest chained change per database among `rows`, unless the anchor is past it already.
  const anchorRelation = `${quoteIdent(schema)}.${quoteIdent(CHAIN_ANCHOR_TABLE)}`;
  const anchorFrom = (rows: string) => `
        INSERT INTO ${anchorRelation} AS a (database, commit_position, seq, chain_hash, committed_at)
        SELECT DISTINCT ON (database) database, commit_position, seq, chain_hash, committed_at FROM ${rows}
        WHERE chain_hash IS NOT NULL ORDER BY database, commit_position DESC, seq DESC
        ON CONFLICT (database) DO UPDATE SET commit_position = EXCLUDED.commit_position, seq = EXCLUDED.seq, chain_hash = EXCLUDED.chain_hash,
          committed_at = EXCLUDED.committed_at, updated_at = now()
        WHERE (a.commit_position, a.seq) < (EXCLUDED.commit_position, EXCLUDED.seq)`;
  const returning = (anchors: boolean) => `RETURNING committed_at${anchors ? ', database, commit_position, seq, chain_hash' : ''}`;
  return {
    horizonRelation,
    anchorRelation,
    chainExists: `SELECT EXISTS (SELECT 1 FROM pg_catalog.pg_attribute WHERE attrelid = pg_catalog.to_regclass($1) AND attname = 'chain_hash' AND NOT attisdropped) AS chained,
        pg_catalog.to_regclass($2) IS NOT NULL AS anchors`,
    recordPartitionAnchors: (partition) => anchorFrom(partition),
    horizonExists: `SELECT pg_catalog.to_regclass($1) IS NOT NULL AS exists`,
    recordPartitionHorizons: (partition) =>
      `INSERT INTO ${horizonRelation} ("table", horizon) SELECT "table", max(committed_at) FROM ${partition} GROUP BY "table" ${raise}`,
    relation,
    lockKey: `nestjs-bemi:prune:${schema}.${table}`,
    tryLock: `SELECT pg_catalog.pg_try_advisory_lock(pg_catalog.hashtext($1)) AS locked`,
    unlock: `SELECT pg_catalog.pg_advisory_unlock(pg_catalog.hashtext($1))`,
    describe: `SELECT c.relkind::text AS kind,
        CASE WHEN c.relkind = 'p' THEN pg_catalog.pg_get_partkeydef(c.oid) END AS partition_key,
        EXISTS (
          -- An index whose leading columns are ("table", committed_at) or (committed_at) keeps every batch a short range scan.
          SELECT 1 FROM pg_catalog.pg_index i
          WHERE i.indrelid = c.oid
            AND ((i.indkey[0] = (SELECT attnum FROM pg_catalog.pg_attribute WHERE attrelid = c.oid AND attname = 'table')
                  AND i.indnatts > 1
                  AND i.indkey[1] = (SELECT attnum FROM pg_catalog.pg_attribute WHERE attrelid = c.oid AND attname = 'committed_at'))
              OR i.indkey[0] = (SELECT attnum FROM pg_catalog.pg_attribute WHERE attrelid = c.oid AND attname = 'committed_at'))
        ) AS has_index
      FROM pg_catalog.pg_class c WHERE c.oid = pg_catalog.to_regclass($1)`,
    cutoff: `SELECT ($1::timestamptz - $2::bigint * interval '1 millisecond')::text AS cutoff`,
    // A loose index scan: one index descent per distinct value instead of reading the whole trail.
    trailTables: (rel) => `WITH RECURSIVE t AS (
        (SELECT "table" FROM ${rel} ORDER BY "table" LIMIT 1)
        UNION ALL
        SELECT (SELECT "table" FROM ${rel} WHERE "table" > t."table" ORDER BY "table" LIMIT 1) FROM t WHERE t."table" IS NOT NULL
      )
      SELECT "table" FROM t WHERE "table" IS NOT NULL`,
    count: `SELECT count(*)::bigint::text AS rows FROM ${relation}
      WHERE "table" = $1 AND committed_at < $2::timestamptz AND tableoid <> ALL($3::oid[])`,
    // Keyset on committed_at: each batch starts where the previous one ended instead of walking
    // past the index entries it left dead. Rows are found again by ctid (a TID scan, about half
    // the batch time of primary-key lookups); the predicates are repeated so a reused slot could
    // never match a row outside the range. Within a transaction the highest seqs go first, so a
    // batch that ends inside one leaves no row whose context holder (a lower seq) is gone.
    deleteBatch: (horizons, anchors = false) => `WITH batch AS (
        SELECT ctid FROM ${relation}
        WHERE "table" = $1 AND committed_at >= $2::timestamptz AND committed_at < $3::timestamptz
        ORDER BY committed_at, commit_position, seq DESC
        LIMIT $4
      ), gone AS (
        DELETE FROM ${relation}
        WHERE "table" = $1 AND committed_at >= $2::timestamptz AND committed_at < $3::timestamptz AND ctid = ANY(ARRAY(SELECT ctid FROM batch))
        ${returning(anchors)}
      )${recordGone(horizons, anchors)}
      SELECT count(*)::int AS rows, max(committed_at)::text AS last FROM gone`,
    // A ctid is only unique within one partition: partitioned tables go by primary key, and the
    // outer range lets PostgreSQL skip partitions.
    deleteBatchPartitioned: (horizons, anchors = false) => `WITH batch AS (
        SELECT id FROM ${relation}
        WHERE "table" = $1 AND committed_at >= $2::timestamptz AND committed_at < $3::timestamptz
        ORDER BY committed_at, commit_position, seq DESC
        LIMIT $4
      ), gone AS (
        DELETE FROM ${relation}
        WHERE "table" = $1 AND committed_at >= $2::timestamptz AND committed_at < $3::timestamptz AND id IN (SELECT id FROM batch)
        ${returning(anchors)}
      )${recordGone(horizons, anchors)}
      SELECT count(*)::int AS rows, max(committed_at)::text AS last FROM gone`,
    partitions: `SELECT c.oid::int AS oid, pg_catalog.format('%I.%I', n.nspname, c.relname) AS name, c.relkind::text AS kind,
        pg_catalog.pg_get_expr(c.relpartbound, c.oid) AS bound
      FROM pg_catalog.pg_inherits i
      JOIN pg_catalog.pg_class c ON c.oid = i.inhrelid
      JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
      WHERE i.inhparent = pg_catalog.to_regclass($1)
      ORDER BY c.relname`,
    boundBeforeAll: `SELECT $1::timestamptz <= ALL($2::timestamptz[]) AS older`,
    detach: (partition) => `ALTER TABLE ${relation} DETACH PARTITION ${partition}`,
    drop: (partition) => `DROP TABLE ${partition}`,
    countAll: (rel) => `SELECT count(*)::bigint::text AS rows FROM ${rel}`,
  };
}
