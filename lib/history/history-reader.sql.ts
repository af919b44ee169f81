/**
 * The statements that read changes as rows of the trail (pages, one change, one transaction):
 * the one shape of change row every reader and the revert get, in one place.
 */
import { UNCHANGED_TOAST_MARKER } from '../trail/json-values';
import { changeContextSql } from '../trail/changes-table';
import { quoteLiteral } from '../shared/sql-quote';
import { SqlParams, type BuiltSql } from './sql-params';
import { COMMIT_TS, databaseIs, keyTextOfValues, type LiveTable, type TrailTables, type TrailPosition } from './trail.sql';
import type { TablePeriod } from './table-identity';
import { tableIs } from './table-identity.sql';

/** Columns of a change row as the mapper expects them. Images come as text: the mapper parses them keeping numeric digits exact. */
function changeColumns(loc: TrailTables): string {
  return `c.id::text AS id, c.primary_key, ${loc.previousKeys ? 'c.previous_key' : 'NULL::text AS previous_key'}, c.before::text AS before, c.after::text AS after,
  ${loc.contextSeq ? `${changeContextSql(loc.changes, 'c')} AS context` : 'c.context'}, ${loc.roles ? 'c.role, c.session_role' : 'NULL::text AS role, NULL::text AS session_role'}, c.database, c.schema, c."table", c.operation, ${COMMIT_TS} AS commit_ts, c.transaction_id::text AS transaction_id,
  c.position::text AS position, c.commit_position::text AS commit_position, c.seq`;
}

/** "Change `alias` is of the filter's table", through every name it had (see table-identity.sql.ts). */
function ofTable(q: SqlParams, table: NonNullable<ChangesFilter['table']>, alias: string): string {
  return tableIs(q, { schema: table.schema, table: table.table, keyColumns: [], periods: table.periods }, alias);
}

export interface ChangesFilter {
  table?: { schema: string; table: string; periods?: TablePeriod[] };
  keyText?: { live: LiveTable; values: string[] };
  fromLower?: string;
  toUpper?: string;
  operations?: string[];
  context?: string; // JSON text
  /** Changes whose session acted as, or logged in as, one of these roles. */
  roles?: string[];
  changedColumns?: string[];
  after?: TrailPosition;
  order: 'asc' | 'desc';
  limit: number;
  /**
   * Bound the page's commit_position from `fromLower`/`toUpper` (see timeBoundsSql): only when the
   * trail has the time-position index, which makes the bound cheap; the rows are the same either way.
   */
  timeBounds?: boolean;
}

/** Name of the BRIN index of (commit_position, committed_at); keep in step with bemiChangesTableSql(). */
export const TIME_POSITION_INDEX = '_bemi_changes_time_position';

/** A page of changes in commit order, with keyset pagination on (commit_position, seq). */
export function changesSql(loc: TrailTables, f: ChangesFilter): BuiltSql {
  const q = new SqlParams();
  const where: string[] = [databaseIs(q, loc)];
  if (f.table) where.push(ofTable(q, f.table, 'c'));
  if (f.keyText) {
    const key = () => keyTextOfValues(q, f.keyText!.live, f.keyText!.values);
    // An UPDATE that changed the key is also the last change of the key it left.
    where.push(loc.previousKeys ? `(c.primary_key = ${key()} OR c.previous_key = ${key()})` : `c.primary_key = ${key()}`);
  }
  if (f.fromLower) where.push(`c.committed_at >= ${q.p(f.fromLower)}::timestamptz`);
  if (f.toUpper) where.push(`c.committed_at <= ${q.p(f.toUpper)}::timestamptz`);
  if (f.operations?.length) where.push(`c.operation IN (${f.operations.map((o) => q.p(o)).join(', ')})`);
  // Rows sharing a holder's context match through the holder (below), not through their own NULL.
  if (f.context && !loc.contextSeq) where.push(`c.context @> ${q.p(f.context)}::jsonb`);
  if (f.roles?.length) {
    const list = () => f.roles!.map((r) => q.p(r)).join(', ');
    where.push(loc.roles ? `(c.role IN (${list()}) OR c.session_role IN (${list()}))` : 'false');
  }
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
  // A record's or a context's changes come from their own index, already few: no bound needed.
  const bounds = f.timeBounds && !f.keyText && !f.context && (f.fromLower || f.toUpper) ? timeBoundsSql(q, loc, f) : undefined;
  if (bounds?.lower) where.push(`c.commit_position >= (SELECT l FROM ${bounds.lower})`);
  if (bounds?.upper) where.push(`c.commit_position <= (SELECT u FROM ${bounds.upper})`);
  const runs = f.context && loc.contextSeq ? contextRunsSql(q, loc, f.context) : undefined;
  const ctes = [...(runs ? [runs] : []), ...(bounds ? [bounds.ctes] : [])];
  const from = runs
    ? `_bemi_context_runs r JOIN ${loc.changes} c ON c.commit_position = r.commit_position AND c.committed_at = r.committed_at AND c.seq BETWEEN r.lo AND r.hi`
    : `${loc.changes} c`;
  return q.build(`${ctes.length ? `WITH${bounds ? ' RECURSIVE' : ''} ${ctes.join(',\n  ')} ` : ''}SELECT ${changeColumns(loc)} FROM ${from} WHERE ${where.join(' AND ')}
    ORDER BY c.commit_position ${dir}, c.seq ${dir} LIMIT ${q.p(f.limit)}`);
}

/**
 * The changes whose context contains `context`, as runs of seqs of one transaction: a row that
 * holds its own context (context_seq NULL) is a run of itself; a holder's run reaches up to the
 * next row of its transaction that does not point at it (rows pointing at a holder follow it
 * without gap: the capture starts a new holder whenever the context or table changes). The GIN
 * index finds the holders, the stream-position key the rest; each run costs its own rows.
 */
function contextRunsSql(q: SqlParams, loc: TrailTables, context: string): string {
  return `_bemi_context_runs AS MATERIALIZED (
    SELECT h.commit_position, h.committed_at, h.seq AS lo,
      CASE WHEN h.context_seq IS NULL THEN h.seq ELSE coalesce((SELECT n.seq - 1 FROM ${loc.changes} n
        WHERE n.commit_position = h.commit_position AND n.committed_at = h.committed_at AND n.seq > h.seq AND n.context_seq IS DISTINCT FROM h.seq
        ORDER BY n.seq LIMIT 1), 2147483647) END AS hi
    FROM ${loc.changes} h WHERE h.context @> ${q.p(context)}::jsonb AND ${databaseIs(q, loc, 'h')})`;
}

/**
 * Commit-position bounds equivalent to the time range, so the page walks the stream-order index
 * from the first change that can match instead of from the table's first change.
 *
 * Commit order and commit time agree only approximately (a backend takes its commit timestamp
 * before it inserts its commit record; clocks step back), so no single probe gives an exact
 * bound. Instead: a guess `g`, from a bisection of the stream index on commit_position (~30 index
 * probes; any value is correct, a good one is cheap), then the exact correction, "the smallest
 * commit_position below g of a change committed at or after `from`", a quadrant of the
 * (commit_position, committed_at) plane that no b-tree can bound: a BRIN index of both columns
 * (per block range of the heap, their minimum and maximum) reads only the block ranges that may
 * hold such a change, which are few when the heap is in commit order, as capture writes it. The bound is
 * least(g, that minimum): every matching change lies at or above it, and the page keeps all its
 * filters and its order, so the rows are exactly those of the unbounded statement. `to` mirrors it.
 */
function timeBoundsSql(q: SqlParams, loc: TrailTables, f: ChangesFilter): { ctes: string; lower?: string; upper?: string } {
  const span = `(SELECT s.commit_position FROM ${loc.changes} s ORDER BY s.commit_position, s.seq LIMIT 1) AS first,
      (SELECT s.commit_position FROM ${loc.changes} s ORDER BY s.commit_position DESC, s.seq DESC LIMIT 1) AS last`;
  // The filters a change of the page must pass that cost nothing to check here (a superset is still a bound).
  const same = (alias: string) =>
    [databaseIs(q, loc, alias), ...(f.table ? [ofTable(q, f.table, alias)] : []),
      ...(f.fromLower ? [`${alias}.committed_at >= ${q.p(f.fromLower)}::timestamptz`] : []),
      ...(f.toUpper ? [`${alias}.committed_at <= ${q.p(f.toUpper)}::timestamptz`] : [])].join(' AND ');
  const ctes: string[] = [];
  let lower: string | undefined;
  let upper: string | undefined;
  if (f.fromLower) {
    const from = q.p(f.fromLower);
    // Invariant: the first change at or above `hi` is at or after `from` (or there is none).
    ctes.push(`_bemi_from_guess(lo, hi) AS (
    SELECT first, last + 1 FROM (SELECT ${span}) e WHERE first IS NOT NULL
    UNION ALL
    SELECT CASE WHEN x.later THEN b.lo ELSE x.mid END, CASE WHEN x.later THEN x.mid ELSE b.hi END
    FROM _bemi_from_guess b CROSS JOIN LATERAL (
      SELECT m.mid, coalesce((SELECT s.committed_at >= ${from}::timestamptz FROM ${loc.changes} s WHERE s.commit_position >= m.mid ORDER BY s.commit_position, s.seq LIMIT 1), true) AS later
      FROM (SELECT b.lo + (b.hi - b.lo) / 2 AS mid) m OFFSET 0) x
    WHERE b.hi - b.lo > 1)`);
    // OFFSET 0: min() over the quadrant's rows, not min() turned into a walk of the stream index.
    ctes.push(`_bemi_from_bound(l) AS (
    SELECT least(g.g, (SELECT min(d.commit_position) FROM (SELECT d.commit_position FROM ${loc.changes} d
      WHERE d.commit_position < g.g AND ${same('d')} OFFSET 0) d))
    FROM (SELECT min(hi) AS g FROM _bemi_from_guess) g)`);
    lower = '_bemi_from_bound';
  }
  if (f.toUpper) {
    const to = q.p(f.toUpper);
    // Invariant: the last change at or below `lo` is at or before `to` (or there is none).
    ctes.push(`_bemi_to_guess(lo, hi) AS (
    SELECT first - 1, last FROM (SELECT ${span}) e WHERE first IS NOT NULL
    UNION ALL
    SELECT CASE WHEN x.earlier THEN x.mid ELSE b.lo END, CASE WHEN x.earlier THEN b.hi ELSE x.mid END
    FROM _bemi_to_guess b CROSS JOIN LATERAL (
      SELECT m.mid, coalesce((SELECT s.committed_at <= ${to}::timestamptz FROM ${loc.changes} s WHERE s.commit_position <= m.mid ORDER BY s.commit_position DESC, s.seq DESC LIMIT 1), true) AS earlier
      FROM (SELECT b.lo + (b.hi - b.lo + 1) / 2 AS mid) m OFFSET 0) x
    WHERE b.hi - b.lo > 1)`);
    ctes.push(`_bemi_to_bound(u) AS (
    SELECT greatest(g.g, (SELECT max(d.commit_position) FROM (SELECT d.commit_position FROM ${loc.changes} d
      WHERE d.commit_position > g.g AND ${same('d')} OFFSET 0) d))
    FROM (SELECT max(lo) AS g FROM _bemi_to_guess) g)`);
    upper = '_bemi_to_bound';
  }
  return { ctes: ctes.join(',\n  '), lower, upper };
}

export function changeByIdSql(loc: TrailTables, id: string): BuiltSql {
  const q = new SqlParams();
  return q.build(`SELECT ${changeColumns(loc)} FROM ${loc.changes} c WHERE c.id = ${q.p(id)}::uuid`);
}

/** All changes committed in the same transaction, in order. */
export function transactionSql(loc: TrailTables, commitPosition: string, transactionId: string): BuiltSql {
  const q = new SqlParams();
  return q.build(`SELECT ${changeColumns(loc)} FROM ${loc.changes} c
    WHERE c.commit_position = ${q.p(commitPosition)}::bigint AND c.transaction_id = ${q.p(transactionId)}::bigint
    ORDER BY c.seq`);
}
