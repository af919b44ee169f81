/**
 * The SQL side of a table's identity through time (table-identity.ts): reading its schema log,
 * "this change belongs to the table" for a table that had other names or a predecessor of the same
 * name, and an image read under today's column names. For a table with one name and no renamed
 * column (the common case) each fragment is exactly the plain condition or expression, so its
 * statements and plans stay those of a trail without a schema log.
 */
import { SqlParams, type BuiltSql } from './sql-params';
import type { StreamPoint, TablePeriod } from './table-identity';
import type { LiveTable, TrailTables } from './trail.sql';

/** The schema log rows of the live table schema.table (by its OID), oldest first; none when the trail has no schema log. */
export function schemaLogRowsSql(loc: TrailTables, schema: string, table: string): BuiltSql {
  const q = new SqlParams();
  const log = loc.schemaLog!;
  return q.build(`SELECT l.commit_position::text AS commit_position, l.position::text AS position, l.schema, l."table", l.columns, l.created, l.dropped
    FROM ${log} l
    WHERE l.database = coalesce(${q.p(loc.database)}::text, current_database())
      AND l.table_oid = (SELECT c.oid FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
                          WHERE n.nspname = ${q.p(schema)} AND c.relname = ${q.p(table)})
    ORDER BY l.commit_position, l.position`);
}

/** Whether the trail has its schema log and horizon tables, and `changes` its previous_key column (older trails do not). */
export function trailTablesExistSql(loc: TrailTables, horizonsName: string, changesName: string): BuiltSql {
  const q = new SqlParams();
  return q.build(`SELECT to_regclass(${q.p(loc.schemaLogName!)}) IS NOT NULL AS log, to_regclass(${q.p(horizonsName)}) IS NOT NULL AS horizons,
      EXISTS (SELECT 1 FROM pg_catalog.pg_attribute a WHERE a.attrelid = to_regclass(${q.p(changesName)}) AND a.attname = 'previous_key' AND NOT a.attisdropped) AS previous_keys`);
}

/** `(cp, pos) >= point` for the columns of change alias `a` (or given expressions). */
function atOrAfter(q: SqlParams, cp: string, pos: string, point: StreamPoint): string {
  return `(${cp}, ${pos}) >= (${q.p(point.commitPosition)}::bigint, ${q.p(point.position)}::bigint)`;
}

function within(q: SqlParams, cp: string, pos: string, period: TablePeriod): string {
  const parts = [];
  if (period.from) parts.push(atOrAfter(q, cp, pos, period.from));
  if (period.to) parts.push(`NOT ${atOrAfter(q, cp, pos, period.to)}`);
  return parts.join(' AND ');
}

/**
 * "Change `alias` is of this table": its schema and table name, and for a table with a history of
 * names (or a predecessor of the same name) the name of each period within that period only.
 */
export function tableIs(q: SqlParams, live: LiveTable, alias = 'c'): string {
  const periods = live.periods;
  if (!periods) return `${alias}."table" = ${q.p(live.table)} AND ${alias}.schema = ${q.p(live.schema)}`;
  const one = (p: TablePeriod) => {
    const bounds = within(q, `${alias}.commit_position`, `${alias}.position`, p);
    return `${alias}."table" = ${q.p(p.table)} AND ${alias}.schema = ${q.p(p.schema)}${bounds ? ` AND ${bounds}` : ''}`;
  };
  return periods.length === 1 ? one(periods[0]) : `(${periods.map((p) => `(${one(p)})`).join(' OR ')})`;
}

/**
 * Image `image` (jsonb) of the change at (`cp`, `pos`) under today's column names: in a period
 * with renamed columns, their values move to today's names (all at once, so swapped names stay
 * right), and values of dropped columns whose name a later column took are removed.
 */
export function imageNow(q: SqlParams, live: LiveTable, image: string, cp: string, pos: string): string {
  const mapped = (live.periods ?? []).filter((p) => p.renamed.length > 0 || p.shadowed.length > 0);
  if (mapped.length === 0) return image;
  const branch = (p: TablePeriod) => {
    const removed = [...p.renamed.map(([then]) => then), ...p.shadowed];
    const moved = p.renamed.map(([then, now]) => `${q.p(now)}::text, ${image} -> ${q.p(then)}::text`).join(', ');
    const without = `(${image} - ARRAY[${removed.map((n) => `${q.p(n)}::text`).join(', ')}])`;
    // Only what the image held moves: an absent column stays absent (strip_nulls of the moved part only).
    const value = moved ? `${without} || jsonb_strip_nulls(jsonb_build_object(${moved}))` : without;
    const cond = within(q, cp, pos, p);
    return cond ? `WHEN ${cond} THEN ${value}` : `WHEN true THEN ${value}`;
  };
  return `CASE ${mapped.map(branch).join(' ')} ELSE ${image} END`;
}
