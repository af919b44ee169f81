import { DEFAULT_SCHEMA } from '../shared/postgres-names';
import { quoteIdent } from '../shared/sql-quote';
import { CHAIN_ANCHOR_TABLE, chainAnchorTableSql } from './chain-anchor';

/** Names used by the audit trail tables (the contract other parts of the library read). */
export const CHANGES_TABLE = 'changes';
export const CAPTURE_STATE_TABLE = '_bemi_capture_state';
export const SCHEMA_LOG_TABLE = '_bemi_schema_log';
export const RETENTION_HORIZON_TABLE = '_bemi_retention_horizon';
/** The view of `changes` whose `context` is every row's own (see {@link changeContextSql}). */
export const CHANGES_WITH_CONTEXT_VIEW = 'changes_with_context';

/** What a row's context reads as when its holder is gone (never silently `{}`). */
export const MISSING_CONTEXT_JSON = '{"_bemi":{"context":"missing"}}';

/**
 * The context of change `alias` of `changes` (qualified): its own, or its holder's (the row of
 * the same transaction whose seq is its context_seq, found through the stream-position key; the
 * equal committed_at lets a partitioned trail look in one partition). The one expression every
 * reader of context uses: history, the view, the BemiChange entity.
 */
export function changeContextSql(changes: string, alias: string): string {
  return `coalesce(${alias}.context, (SELECT h.context FROM ${changes} h WHERE h.commit_position = ${alias}.commit_position AND h.seq = ${alias}.context_seq AND h.committed_at = ${alias}.committed_at), '${MISSING_CONTEXT_JSON}'::jsonb)`;
}

/**
 * Tables never tracked, whatever the options: the trail itself and MikroORM's migration log.
 * Tables named `_bemi*` are never tracked either. The trigger migration and capture's publication
 * both read this list, so they cannot disagree.
 */
export const NEVER_TRACKED_TABLES: readonly string[] = Object.freeze([CHANGES_TABLE, 'mikro_orm_migrations']);

export interface ChangesTableSqlOptions {
  /** Schema of `changes` and `_bemi_capture_state`. Default `public`. */
  schema?: string;
  /** Also index `before` and `after` (GIN jsonb_path_ops). Faster value searches, slower ingest. Default false. */
  indexBeforeAfter?: boolean;
  /**
   * Partition `changes` by month of `committed_at`, so retention can drop whole months. Adds a
   * `DEFAULT` partition so no write ever fails; create month partitions ahead of time with
   * {@link bemiChangesPartitionSql}. Default false. See docs/retention.md.
   */
  partitionByMonth?: boolean;
}

/**
 * DDL of the audit trail: `changes` (one row per captured row change), `_bemi_capture_state`
 * (one row per replication slot), `_bemi_schema_log` (one row per table per DDL) and
 * `_bemi_retention_horizon` (one row per pruned trail table). The single source of this SQL: the
 * worker's create-when-missing step, `ensureSchema` and migrations all run `up` (which also adds
 * `_bemi_chain_anchor`, docs/verify.md). Idempotent;
 * `down` drops them all.
 */
export function bemiChangesTableSql(options: ChangesTableSqlOptions = {}): { up: string; down: string } {
  const schema = options.schema ?? DEFAULT_SCHEMA;
  const partitioned = options.partitionByMonth ?? false;
  const s = quoteIdent(schema);
  const changes = `${s}.${quoteIdent(CHANGES_TABLE)}`;
  const state = `${s}.${quoteIdent(CAPTURE_STATE_TABLE)}`;
  const schemaLog = `${s}.${quoteIdent(SCHEMA_LOG_TABLE)}`;
  const horizons = `${s}.${quoteIdent(RETENTION_HORIZON_TABLE)}`;
  // Index names are schema-local; a prefix keeps them clear of the user's own.
  const idx = (suffix: string) => quoteIdent(`_bemi_changes_${suffix}`);
  const up = `-- nestjs-bemi: audit trail tables (up)
CREATE SCHEMA IF NOT EXISTS ${s};
CREATE TABLE IF NOT EXISTS ${changes} (
  id uuid ${partitioned ? 'NOT NULL' : 'PRIMARY KEY'} DEFAULT gen_random_uuid(),
  primary_key text NULL,
  -- The key before an UPDATE that changed it (NULL otherwise): that record's trail ends here.
  previous_key text NULL,
  before jsonb NOT NULL DEFAULT '{}',
  after jsonb NOT NULL DEFAULT '{}',
  -- The statement's context, stored once per run of rows of one transaction and table that share
  -- it: the run's first row (its holder) has it, the others NULL (see context_seq).
  context jsonb NULL DEFAULT '{}',
  -- The database role the writing session acted as (SET ROLE, else its login role) and the role
  -- that logged in, as the trigger saw them; NULL where no trigger said (docs/security.md).
  role text NULL,
  session_role text NULL,
  database text NOT NULL,
  schema text NOT NULL,
  "table" text NOT NULL,
  operation text NOT NULL CHECK (operation IN ('CREATE', 'UPDATE', 'DELETE', 'TRUNCATE')),
  committed_at timestamptz NOT NULL,
  queued_at timestamptz NOT NULL,
  created_at timestamptz NOT NULL DEFAULT now(),
  transaction_id bigint NOT NULL,
  position bigint NOT NULL,
  commit_position bigint NOT NULL,
  seq integer NOT NULL,
  -- The seq of the row of this transaction that holds this row's context (itself for a holder);
  -- NULL: the row holds its own context (rows written before this column, or contextPerRow).
  context_seq integer NULL,
  -- Exactly-once: a change is identified by its transaction's commit LSN and its index in it.
  -- Never the change LSN alone: rows of one multi-row statement can share it.
  ${
    partitioned
      ? // A partitioned table's unique constraints must contain the partition key; a change's
        // committed_at never varies between deliveries, so dedupe is unchanged.
        `PRIMARY KEY (id, committed_at),
  CONSTRAINT _bemi_changes_stream_position UNIQUE (commit_position, seq, committed_at)
) PARTITION BY RANGE (committed_at);
CREATE TABLE IF NOT EXISTS ${s}.${quoteIdent(`${CHANGES_TABLE}_default`)} PARTITION OF ${changes} DEFAULT;`
      : `CONSTRAINT _bemi_changes_stream_position UNIQUE (commit_position, seq)
);`
  }
-- Trails created before these columns existed get them (nullable, no default: no rewrite).
ALTER TABLE ${changes} ADD COLUMN IF NOT EXISTS previous_key text NULL;
ALTER TABLE ${changes} ADD COLUMN IF NOT EXISTS role text NULL;
ALTER TABLE ${changes} ADD COLUMN IF NOT EXISTS session_role text NULL;
-- The hash chain (capture's chain option, docs/verify.md): NULL on rows written with it off.
ALTER TABLE ${changes} ADD COLUMN IF NOT EXISTS chain_hash bytea NULL, ADD COLUMN IF NOT EXISTS chain_previous_position bigint NULL, ADD COLUMN IF NOT EXISTS chain_previous_seq integer NULL;
ALTER TABLE ${changes} ADD COLUMN IF NOT EXISTS context_seq integer NULL;
-- Rows that share a holder's context store none (a catalog-only change, existing rows untouched).
ALTER TABLE ${changes} ALTER COLUMN context DROP NOT NULL;
-- A record's trail in history order (at(), tableAt()): the stream position is part of the key so
-- "the last change at or before T" is one index step, with no sort of same-timestamp changes.
CREATE INDEX IF NOT EXISTS ${idx('record')} ON ${changes} ("table", primary_key, committed_at, commit_position, seq);
-- Keys whose rows were deleted: with the live table's keys, every key tableAt() must look at,
-- without walking the whole trail. Only DELETE rows enter it, so it costs ingest almost nothing.
CREATE INDEX IF NOT EXISTS ${idx('deleted')} ON ${changes} ("table", primary_key) WHERE operation = 'DELETE';
-- Keys that an UPDATE changed: where such a record's trail ends (only those rows enter it).
CREATE INDEX IF NOT EXISTS ${idx('previous_key')} ON ${changes} ("table", previous_key, committed_at, commit_position, seq) WHERE previous_key IS NOT NULL;
-- History pages a table's trail in stream order (BemiHistory.changes / tableAt).
CREATE INDEX IF NOT EXISTS ${idx('table_position')} ON ${changes} ("table", commit_position, seq);
-- Per block range of the heap, the least and greatest commit_position and committed_at: lets
-- changes({ from, to }) bound the commit positions of a time range exactly, even where commit order
-- and commit time disagree (docs/history.md, "Time-range listing"). A few pages, no ingest cost
-- to speak of; autosummarize keeps new ranges summarized.
CREATE INDEX IF NOT EXISTS ${idx('time_position')} ON ${changes} USING brin (commit_position, committed_at) WITH (autosummarize = on);
CREATE INDEX IF NOT EXISTS ${idx('context')} ON ${changes} USING gin (context jsonb_path_ops);
${
  options.indexBeforeAfter
    ? `CREATE INDEX IF NOT EXISTS ${idx('before')} ON ${changes} USING gin (before jsonb_path_ops);
CREATE INDEX IF NOT EXISTS ${idx('after')} ON ${changes} USING gin (after jsonb_path_ops);
`
    : ''
}CREATE TABLE IF NOT EXISTS ${state} (
  slot_name text PRIMARY KEY,
  database text NOT NULL,
  -- When capture through this slot began: changes committed earlier are not in the trail.
  started_at timestamptz NOT NULL DEFAULT now(),
  last_commit_position bigint NULL,
  last_commit_end_position bigint NULL,
  last_committed_at timestamptz NULL,
  updated_at timestamptz NULL
);
-- The shape of each captured table after each DDL on it, in stream order (docs/capture.md,
-- "Schema log"): which key, names and types a change of that moment was written under. One row
-- per table per DDL, so it stays small; the worker reads all of one database's rows at start.
CREATE TABLE IF NOT EXISTS ${schemaLog} (
  database text NOT NULL,
  commit_position bigint NOT NULL,
  position bigint NOT NULL,
  committed_at timestamptz NOT NULL,
  table_oid bigint NOT NULL,
  schema text NOT NULL,
  "table" text NOT NULL,
  -- [{"attnum", "name", "typeOid", "type", "generated"}], in attnum order; [] once dropped.
  columns jsonb NOT NULL,
  -- Primary key column names in key order; [] for none.
  primary_key jsonb NOT NULL,
  dropped boolean NOT NULL DEFAULT false,
  -- This DDL created the table: history does not look for its changes before it.
  created boolean NOT NULL DEFAULT false,
  PRIMARY KEY (database, commit_position, position, table_oid)
);
${retentionHorizonTableSql(schema)}
${chainAnchorTableSql(schema)}
-- Every column of changes, with each row's context resolved through its holder: read this
-- instead of changes.context, which is NULL on rows that share a holder's.
CREATE OR REPLACE VIEW ${s}.${quoteIdent(CHANGES_WITH_CONTEXT_VIEW)} AS
  SELECT c.id, c.primary_key, c.previous_key, c.before, c.after, ${changeContextSql(changes, 'c')} AS context, c.role, c.session_role,
    c.database, c.schema, c."table", c.operation, c.committed_at, c.queued_at, c.created_at, c.transaction_id, c.position,
    c.commit_position, c.seq, c.context_seq, c.chain_hash, c.chain_previous_position, c.chain_previous_seq
  FROM ${changes} c;
`;
  const down = `-- nestjs-bemi: audit trail tables (down)
DROP VIEW IF EXISTS ${s}.${quoteIdent(CHANGES_WITH_CONTEXT_VIEW)};
DROP TABLE IF EXISTS ${s}.${quoteIdent(CHAIN_ANCHOR_TABLE)};
DROP TABLE IF EXISTS ${horizons};
DROP TABLE IF EXISTS ${schemaLog};
DROP TABLE IF EXISTS ${state};
DROP TABLE IF EXISTS ${changes};
`;
  return { up, down };
}

/** DDL of `_bemi_retention_horizon` alone (part of `up`; retention creates it on older trails). Idempotent. */
export function retentionHorizonTableSql(schema: string = DEFAULT_SCHEMA): string {
  return `-- Per trail table, the latest commit time retention deleted: history refuses moments before it
-- (the trail no longer knows every change after them), as it refuses moments before capture.
CREATE TABLE IF NOT EXISTS ${quoteIdent(schema)}.${quoteIdent(RETENTION_HORIZON_TABLE)} (
  "table" text PRIMARY KEY,
  horizon timestamptz NOT NULL,
  updated_at timestamptz NOT NULL DEFAULT now()
);`;
}

/**
 * DDL of one month's partition of a `partitionByMonth` changes table: `changes_YYYY_MM`, holding
 * committed_at from the first of the month (UTC) up to the first of the next. Idempotent.
 */
export function bemiChangesPartitionSql(month: string, options: Pick<ChangesTableSqlOptions, 'schema'> = {}): string {
  const m = /^(\d{4})-(0[1-9]|1[0-2])$/.exec(month);
  if (!m) throw new Error(`bemiChangesPartitionSql: month must look like "2026-01", got ${JSON.stringify(month)}.`);
  const year = Number(m[1]);
  const mon = Number(m[2]);
  const next = mon === 12 ? `${year + 1}-01` : `${year}-${String(mon + 1).padStart(2, '0')}`;
  const s = quoteIdent(options.schema ?? DEFAULT_SCHEMA);
  const name = quoteIdent(`${CHANGES_TABLE}_${m[1]}_${m[2]}`);
  return `CREATE TABLE IF NOT EXISTS ${s}.${name} PARTITION OF ${s}.${quoteIdent(CHANGES_TABLE)} FOR VALUES FROM ('${month}-01 00:00:00+00') TO ('${next}-01 00:00:00+00');`;
}
