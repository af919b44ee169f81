import { bemiChangesTableSql } from '../../lib/capture/changes-table';
import type { RetentionLogger } from '../../lib/retention/prune-changes';
import type { TestDatabase } from '../support/database';

/** Keeps log lines for assertions. */
export class RecordingLogger implements RetentionLogger {
  readonly logs: string[] = [];
  readonly warnings: string[] = [];
  log(message: string): void {
    this.logs.push(message);
  }
  warn(message: string): void {
    this.warnings.push(message);
  }
}

let position = 1;

/**
 * Inserts synthetic changes (table, committed_at) directly. Their commit positions are small
 * numbers, far below any real LSN, so they never collide with rows the capture worker writes.
 */
export async function seedChanges(db: TestDatabase, rows: Array<{ table: string; committedAt: string }>, relation = 'public.changes'): Promise<void> {
  const first = position;
  position += rows.length;
  await db.query(
    `INSERT INTO ${relation} (primary_key, database, schema, "table", operation, committed_at, queued_at, transaction_id, position, commit_position, seq)
     SELECT i::text, current_database(), 'public', t, 'CREATE', at, at, 1, $3::bigint + i, $3::bigint + i, 0
     FROM unnest($1::text[], $2::timestamptz[]) WITH ORDINALITY AS r(t, at, i)`,
    [rows.map((r) => r.table), rows.map((r) => r.committedAt), first],
  );
}

/** `count` rows of `table`, committed one second apart ending at `last`. */
export function series(table: string, count: number, last: string): Array<{ table: string; committedAt: string }> {
  const end = Date.parse(last);
  return Array.from({ length: count }, (_, i) => ({ table, committedAt: new Date(end - (count - 1 - i) * 1000).toISOString() }));
}

export async function createChangesTable(db: TestDatabase): Promise<void> {
  await db.query(bemiChangesTableSql().up);
}

/** The index pruning asks for (see docs/retention.md); IF NOT EXISTS in case the changes DDL brings it. */
export const PRUNE_INDEX = `CREATE INDEX IF NOT EXISTS _bemi_changes_table_committed_at ON changes ("table", committed_at)`;

/**
 * `changes` partitioned by month of committed_at, as docs/retention.md describes it: the same
 * columns and indexes, with the partition key added to the primary key and to the dedupe
 * constraint (PostgreSQL requires unique constraints to include it).
 */
export function partitionedChangesDdl(months: string[]): string {
  const partitions = months.map((m) => {
    const [y, mo] = m.split('-').map(Number);
    const next = mo === 12 ? `${y + 1}-01` : `${y}-${String(mo + 1).padStart(2, '0')}`;
    return `CREATE TABLE changes_${m.replace('-', '_')} PARTITION OF changes FOR VALUES FROM ('${m}-01 00:00:00+00') TO ('${next}-01 00:00:00+00');`;
  });
  return `CREATE TABLE changes (
  id uuid NOT NULL DEFAULT gen_random_uuid(),
  primary_key text NULL,
  before jsonb NOT NULL DEFAULT '{}',
  after jsonb NOT NULL DEFAULT '{}',
  context jsonb NOT NULL DEFAULT '{}',
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
  PRIMARY KEY (id, committed_at),
  CONSTRAINT _bemi_changes_stream_position UNIQUE (commit_position, seq, committed_at)
) PARTITION BY RANGE (committed_at);
CREATE INDEX _bemi_changes_record ON changes ("table", primary_key, committed_at);
CREATE INDEX _bemi_changes_table_position ON changes ("table", commit_position, seq);
CREATE INDEX _bemi_changes_context ON changes USING gin (context jsonb_path_ops);
CREATE INDEX _bemi_changes_table_committed_at ON changes ("table", committed_at);
${partitions.join('\n')}
`;
}
