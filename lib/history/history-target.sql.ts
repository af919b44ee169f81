/**
 * What resolving a history target asks the database: the live table's catalog facts, and (for a
 * name that is neither mapped nor a table) whether the trail knows the table at all.
 */
import { SqlParams, type BuiltSql } from './sql-params';
import type { TrailTables } from './trail.sql';

/** Columns and primary key of a table, from the catalog (null row when it does not exist). */
export function tableCatalogSql(schema: string, table: string): BuiltSql {
  const q = new SqlParams();
  return q.build(`SELECT a.attname AS name, format_type(a.atttypid, a.atttypmod) AS type,
      a.attgenerated <> '' AS generated, a.attidentity = 'a' AS identity_always,
      coalesce((SELECT k.ord FROM unnest(i.indkey) WITH ORDINALITY k(attnum, ord) WHERE k.attnum = a.attnum), 0) AS key_position,
      bt.oid::int AS base_oid, bt.typcategory AS category
    FROM pg_class r
    JOIN pg_namespace n ON n.oid = r.relnamespace
    JOIN pg_attribute a ON a.attrelid = r.oid AND a.attnum > 0 AND NOT a.attisdropped
    JOIN pg_type ty ON ty.oid = a.atttypid
    JOIN pg_type bt ON bt.oid = CASE WHEN ty.typtype = 'd' THEN ty.typbasetype ELSE ty.oid END
    LEFT JOIN pg_index i ON i.indrelid = r.oid AND i.indisprimary
    WHERE n.nspname = ${q.p(schema)} AND r.relname = ${q.p(table)} AND r.relkind IN ('r', 'p')
    ORDER BY a.attnum`);
}

/** Whether the trail holds any change of schema.table (one probe of the record index). */
export function trailHasTableSql(loc: TrailTables, schema: string, table: string): BuiltSql {
  const q = new SqlParams();
  return q.build(`SELECT 1 AS found FROM ${loc.changes} c WHERE c."table" = ${q.p(table)} AND c.schema = ${q.p(schema)} LIMIT 1`);
}
