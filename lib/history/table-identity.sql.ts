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
  return q.build(`SELECT l.commit_position::text AS commit_position, l.position::text AS position, l.schema, l."table", l.columns, l.created, l.dropped,
      to_char(l.committed_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"') AS committed_at,
      -- The latest drop of another table of the same name: the live table's trail must not reach back past it.
      (SELECT to_char(max(d.committed_at) AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"') FROM ${log} d
        WHERE d.database = l.database AND d.schema = ${q.p(schema)} AND d."table" = ${q.p(table)} AND d.dropped AND d.table_oid <> l.table_oid) AS predecessor_dropped_at
    FROM ${log} l
    WHERE l.database = coalesce(${q.p(loc.database)}::text, current_database())
      AND l.table_oid = (SELECT c.oid FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
                          WHERE n.nspname = ${q.p(schema)} AND c.relname = ${q.p(table)})
    ORDER BY l.commit_position, l.position`);
}

/**
 * The current schema and name of the live table that was called schema.table at its latest entry
 * under that name (none when no live table ever had it). Lets a former name stand for the table.
 */
export function renamedTableSql(loc: TrailTables, schema: string, table: string): BuiltSql {
  const q = new SqlParams();
  return q.build(`SELECT n.nspname AS schema, c.relname AS "table"
    FROM ${loc.schemaLog!} l
    JOIN pg_catalog.pg_class c ON c.oid = l.table_oid::oid
    JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
    WHERE l.database = coalesce(${q.p(loc.database)}::text, current_database()) AND l.schema = ${q.p(schema)} AND l."table" = ${q.p(table)} AND NOT l.dropped
      -- An OID dropped since and taken again by another table is not the same table.
      AND NOT EXISTS (SELECT 1 FROM ${loc.schemaLog!} d WHERE d.database = l.database AND d.table_oid = l.table_oid AND d.dropped AND d.commit_position > l.commit_position)
    ORDER BY l.commit_position DESC, l.position DESC LIMIT 1`);
}


/** Whether the trail has its schema log and horizon tables, and `changes` its previous_key and role columns (older trails do not). */
export function trailTablesExistSql(names: { log: string; horizons: string; changes: string }): BuiltSql {
  const q = new SqlParams();
  return q.build(`SELECT to_regclass(${q.p(names.log)}) IS NOT NULL AS log, to_regclass(${q.p(names.horizons)}) IS NOT NULL AS horizons,
      EXISTS (SELECT 1 FROM pg_catalog.pg_attribute a WHERE a.attrelid = to_regclass(${q.p(names.changes)}) AND a.attname = 'previous_key' AND NOT a.attisdropped) AS previous_keys,
      EXISTS (SELECT 1 FROM pg_catalog.pg_attribute a WHERE a.attrelid = to_regclass(${q.p(names.changes)}) AND a.attname = 'session_role' AND NOT a.attisdropped) AS roles,
      EXISTS (SELECT 1 FROM pg_catalog.pg_attribute a WHERE a.attrelid = to_regclass(${q.p(names.changes)}) AND a.attname = 'context_seq' AND NOT a.attisdropped) AS context_seq`);
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
