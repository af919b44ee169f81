/**
 * The statements that read changes as rows of the trail (pages, one change, one transaction):
 * the one shape of change row every reader and the revert get, in one place.
 */
import { UNCHANGED_TOAST_MARKER } from '../trail/json-values';
import { quoteLiteral } from '../shared/sql-quote';
import { SqlParams, type BuiltSql } from './sql-params';
import { COMMIT_TS, databaseIs, keyTextOfValues, type LiveTable, type TrailTables, type TrailPosition } from './trail.sql';

/** Columns of a change row as the mapper expects them. Images come as text: the mapper parses them keeping numeric digits exact. */
const CHANGE_COLUMNS = `c.id::text AS id, c.primary_key, c.before::text AS before, c.after::text AS after, c.context, c.database, c.schema, c."table",
  c.operation, ${COMMIT_TS} AS commit_ts, c.transaction_id::text AS transaction_id,
  c.position::text AS position, c.commit_position::text AS commit_position, c.seq`;

export interface ChangesFilter {
  table?: { schema: string; table: string };
  keyText?: { live: LiveTable; values: string[] };
  fromLower?: string;
  toUpper?: string;
  operations?: string[];
  context?: string; // JSON text
  changedColumns?: string[];
  after?: TrailPosition;
  order: 'asc' | 'desc';
  limit: number;
}

/** A page of changes in commit order, with keyset pagination on (commit_position, seq). */
export function changesSql(loc: TrailTables, f: ChangesFilter): BuiltSql {
  const q = new SqlParams();
  const where: string[] = [databaseIs(q, loc)];
  if (f.table) where.push(`c."table" = ${q.p(f.table.table)}`, `c.schema = ${q.p(f.table.schema)}`);
  if (f.keyText) where.push(`c.primary_key = ${keyTextOfValues(q, f.keyText.live, f.keyText.values)}`);
  if (f.fromLower) where.push(`c.committed_at >= ${q.p(f.fromLower)}::timestamptz`);
  if (f.toUpper) where.push(`c.committed_at <= ${q.p(f.toUpper)}::timestamptz`);
  if (f.operations?.length) where.push(`c.operation IN (${f.operations.map((o) => q.p(o)).join(', ')})`);
  if (f.context) where.push(`c.context @> ${q.p(f.context)}::jsonb`);
  if (f.changedColumns?.length) {
    const marker = `${quoteLiteral(JSON.stringify(UNCHANGED_TOAST_MARKER))}::jsonb`;
    where.push(
      `(${f.changedColumns.map((col) => `(c.before -> ${q.p(col)} IS DISTINCT FROM c.after -> ${q.p(col)} AND c.after -> ${q.p(col)} IS DISTINCT FROM ${marker})`).join(' OR ')})`,
    );
  }
  const dir = f.order === 'desc' ? 'DESC' : 'ASC';
  if (f.after) {
    where.push(`(c.commit_position, c.seq) ${dir === 'ASC' ? '>' : '<'} (${q.p(f.after.commitPosition)}::bigint, ${q.p(f.after.seq)}::int)`);
  }
  return q.build(`SELECT ${CHANGE_COLUMNS} FROM ${loc.changes} c WHERE ${where.join(' AND ')}
    ORDER BY c.commit_position ${dir}, c.seq ${dir} LIMIT ${q.p(f.limit)}`);
}

export function changeByIdSql(loc: TrailTables, id: string): BuiltSql {
  const q = new SqlParams();
  return q.build(`SELECT ${CHANGE_COLUMNS} FROM ${loc.changes} c WHERE c.id = ${q.p(id)}::uuid`);
}

/** All changes committed in the same transaction, in order. */
export function transactionSql(loc: TrailTables, commitPosition: string, transactionId: string): BuiltSql {
  const q = new SqlParams();
  return q.build(`SELECT ${CHANGE_COLUMNS} FROM ${loc.changes} c
    WHERE c.commit_position = ${q.p(commitPosition)}::bigint AND c.transaction_id = ${q.p(transactionId)}::bigint
    ORDER BY c.seq`);
}
