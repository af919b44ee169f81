import type { Client } from 'pg';
import { valueKind, type ValueKind } from './json-values';

/** What the stitcher needs to know about a published table beyond pgoutput's relation message. */
export interface RelationInfo {
  /** Primary key column names in key order (from pg_index, never from the replica identity). */
  primaryKey: string[];
  /** JSON encoding per column name. */
  kinds: Map<string, ValueKind>;
}

/**
 * Reads primary keys and column types from the source catalog. pgoutput's own key flags follow
 * the replica identity (every column under REPLICA IDENTITY FULL), so they cannot tell the key.
 */
export async function describeRelation(client: Client, relationOid: number): Promise<RelationInfo> {
  const columns = await client.query<{ name: string; base_oid: number; category: string; elem_oid: number | null; elem_delim: string | null }>(
    `SELECT a.attname AS name, bt.oid::int AS base_oid, bt.typcategory AS category,
            et.oid::int AS elem_oid, et.typdelim AS elem_delim
       FROM pg_catalog.pg_attribute a
       JOIN pg_catalog.pg_type t ON t.oid = a.atttypid
       JOIN pg_catalog.pg_type bt ON bt.oid = CASE WHEN t.typtype = 'd' THEN t.typbasetype ELSE t.oid END
       LEFT JOIN pg_catalog.pg_type e0 ON bt.typcategory = 'A' AND e0.oid = bt.typelem
       LEFT JOIN pg_catalog.pg_type et ON et.oid = CASE WHEN e0.typtype = 'd' THEN e0.typbasetype ELSE e0.oid END
      WHERE a.attrelid = $1 AND a.attnum > 0 AND NOT a.attisdropped`,
    [relationOid],
  );
  const key = await client.query<{ name: string }>(
    `SELECT a.attname AS name
       FROM pg_catalog.pg_index i
       CROSS JOIN LATERAL unnest(i.indkey) WITH ORDINALITY AS k(attnum, ord)
       JOIN pg_catalog.pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = k.attnum
      WHERE i.indrelid = $1 AND i.indisprimary
      ORDER BY k.ord`,
    [relationOid],
  );
  const kinds = new Map<string, ValueKind>();
  for (const c of columns.rows) {
    const elem = c.elem_oid === null ? undefined : { oid: c.elem_oid, delimiter: c.elem_delim ?? ',' };
    kinds.set(c.name, valueKind(c.base_oid, c.category, elem));
  }
  return { primaryKey: key.rows.map((r) => r.name), kinds };
}
