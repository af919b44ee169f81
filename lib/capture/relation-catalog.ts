import type { Client } from 'pg';
import { valueKind, type ValueKind } from '../trail/json-values';

/** What the stitcher needs to know about a published table beyond pgoutput's relation message. */
export interface RelationInfo {
  /** Primary key column names in key order (from pg_index, never from the replica identity). */
  primaryKey: string[];
  /** JSON encoding per column name. */
  kinds: Map<string, ValueKind>;
}

/**
 * Waits until the source transaction `xid` (32-bit, as in pgoutput's BEGIN) is visible to new
 * snapshots. The walsender streams a transaction once its commit record is in the WAL, a moment
 * before the committing backend makes it visible; a table created in that very transaction is
 * not in the catalog yet for a query made in between (its key and column types would be missed).
 * Bounded: after `maxWaitMs` the caller reads what the catalog has.
 */
export async function waitUntilVisible(client: Client, xid: string, maxWaitMs = 10_000): Promise<void> {
  const deadline = Date.now() + maxWaitMs;
  for (;;) {
    const { rows } = await client.query<{ visible: boolean }>(
      `SELECT pg_catalog.pg_visible_in_snapshot(((x.epoch - CASE WHEN $1::bigint > x.low THEN 1 ELSE 0 END) * 4294967296 + $1::bigint)::text::xid8, x.snap) AS visible
         FROM (SELECT s AS snap, pg_catalog.pg_snapshot_xmax(s)::text::bigint >> 32 AS epoch, pg_catalog.pg_snapshot_xmax(s)::text::bigint & 4294967295 AS low
                 FROM pg_catalog.pg_current_snapshot() s) x`,
      [xid],
    );
    if (rows[0].visible || Date.now() > deadline) return;
    await new Promise((r) => setTimeout(r, 2));
  }
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
