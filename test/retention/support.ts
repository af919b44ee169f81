import { bemiChangesPartitionSql, bemiChangesTableSql } from '../../lib/trail/changes-table';
import type { TestDatabase } from '../support/database';

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

/** The index pruning asks for (see docs/retention.md); IF NOT EXISTS in case the changes DDL brings it. */
export const PRUNE_INDEX = `CREATE INDEX IF NOT EXISTS _bemi_changes_table_committed_at ON changes ("table", committed_at)`;

/** `changes` partitioned by month of committed_at through the library's own DDL, with these months and the pruning index. */
export function partitionedChangesDdl(months: string[]): string {
  return [bemiChangesTableSql({ partitionByMonth: true }).up, ...months.map((m) => bemiChangesPartitionSql(m)), `${PRUNE_INDEX};`].join('\n');
}
