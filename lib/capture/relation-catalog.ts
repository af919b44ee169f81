import type { Client } from 'pg';
import type { Pgoutput } from 'pg-logical-replication';
import { BEMI_SQL_OBJECTS } from '../migration/bemi-migration-sql';
import { valueKind, type ValueKind } from '../trail/json-values';
import type { TableShape } from './schema-log';

/** What the stitcher needs to know about a published table beyond pgoutput's relation message. */
export interface RelationInfo {
  /** Primary key column names in key order, as named in the relation message; empty when none or unknown. */
  primaryKey: string[];
  /** Why the key of this relation's rows cannot be told (they are stored without one); undefined when it can. */
  keyProblem?: string;
  /** JSON encoding per column name. */
  kinds: Map<string, ValueKind>;
  /**
   * Whether the table has the (enabled) context trigger. A statement on a table without it emits
   * no context message, so its rows must not take the context an earlier statement emitted.
   */
  contextTrigger: boolean;
}

/** The parts of pgoutput's relation message that describe the rows that follow it. */
export type RelationShape = Pick<Pgoutput.MessageRelation, 'relationOid' | 'schema' | 'name' | 'replicaIdentity' | 'keyColumns'> & {
  columns: ReadonlyArray<Pick<Pgoutput.RelationColumn, 'name' | 'typeOid'>>;
};

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
 * Describes the rows that follow a relation message. The message is the schema the rows were
 * written under (the walsender sends it again after DDL), so column names and types come from it:
 * the catalog is read only for what the message lacks — how each type is encoded, and the primary
 * key when neither the replica identity nor the schema log's `shape` in force gives it — and never
 * re-types an older row.
 */
export async function describeRelation(client: Client, relation: RelationShape, shape?: TableShape): Promise<RelationInfo> {
  const typeOids = [...new Set(relation.columns.map((c) => c.typeOid))];
  const types = await client.query<{ oid: number; base_oid: number; category: string; elem_oid: number | null; elem_delim: string | null }>(
    `SELECT t.oid::int AS oid, bt.oid::int AS base_oid, bt.typcategory AS category,
            et.oid::int AS elem_oid, et.typdelim AS elem_delim
       FROM pg_catalog.pg_type t
       JOIN pg_catalog.pg_type bt ON bt.oid = CASE WHEN t.typtype = 'd' THEN t.typbasetype ELSE t.oid END
       LEFT JOIN pg_catalog.pg_type e0 ON bt.typcategory = 'A' AND e0.oid = bt.typelem
       LEFT JOIN pg_catalog.pg_type et ON et.oid = CASE WHEN e0.typtype = 'd' THEN e0.typbasetype ELSE e0.oid END
      WHERE t.oid = ANY ($1::oid[])`,
    [typeOids],
  );
  const kindOf = new Map<number, ValueKind>();
  for (const t of types.rows) {
    const elem = t.elem_oid === null ? undefined : { oid: t.elem_oid, delimiter: t.elem_delim ?? ',' };
    kindOf.set(t.oid, valueKind(t.base_oid, t.category, elem));
  }
  // A type dropped since the row was written is kept as the text PostgreSQL sent.
  const kinds = new Map(relation.columns.map((c) => [c.name, kindOf.get(c.typeOid) ?? ('string' as const)]));
  const table = await tableFacts(client, relation.relationOid);
  // A table gone since: whether it had the trigger is not known, and stitching is as always.
  return { ...(await primaryKeyOf(client, relation, table.exists, shape)), kinds, contextTrigger: table.trigger || !table.exists };
}

/** Whether the table still exists, and whether it has the enabled context trigger. */
async function tableFacts(client: Client, relationOid: number): Promise<{ exists: boolean; trigger: boolean }> {
  const { rows } = await client.query<{ exists: boolean; trigger: boolean }>(
    `SELECT EXISTS (SELECT 1 FROM pg_catalog.pg_class WHERE oid = $1) AS exists,
            EXISTS (SELECT 1 FROM pg_catalog.pg_trigger WHERE tgrelid = $1 AND tgname = $2 AND tgenabled <> 'D') AS trigger`,
    [relationOid, BEMI_SQL_OBJECTS.trigger],
  );
  return rows[0];
}

/**
 * The key of the rows that follow: under REPLICA IDENTITY DEFAULT the message flags it (the
 * primary key of that time); otherwise (FULL flags every column) the schema log's shape in force,
 * when it describes these very columns (a DDL the log missed would make it stale); otherwise the
 * catalog's primary key, when its columns are in the message under the same names.
 */
async function primaryKeyOf(
  client: Client,
  relation: RelationShape,
  tableExists: boolean,
  shape: TableShape | undefined,
): Promise<Pick<RelationInfo, 'primaryKey' | 'keyProblem'>> {
  if (relation.replicaIdentity === 'default' && relation.keyColumns.length > 0) return { primaryKey: [...relation.keyColumns] };
  if (shape && describesRelation(shape, relation)) return { primaryKey: [...shape.primaryKey] };
  const key = await client.query<{ name: string }>(
    `SELECT a.attname AS name
       FROM pg_catalog.pg_index i
       CROSS JOIN LATERAL unnest(i.indkey) WITH ORDINALITY AS k(attnum, ord)
       JOIN pg_catalog.pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = k.attnum
      WHERE i.indrelid = $1 AND i.indisprimary
      ORDER BY k.ord`,
    [relation.relationOid],
  );
  const names = key.rows.map((r) => r.name);
  const table = `${relation.schema}.${relation.name}`;
  if (names.length === 0) {
    // A table without a primary key is documented behaviour; a table gone since is not.
    return tableExists ? { primaryKey: [] } : { primaryKey: [], keyProblem: `${table} was dropped before its changes were read, and its replica identity does not name the key` };
  }
  const columns = new Set(relation.columns.map((c) => c.name));
  const missing = names.filter((n) => !columns.has(n));
  if (missing.length) {
    return { primaryKey: [], keyProblem: `the primary key of ${table} (${names.join(', ')}) is not among the columns its rows were written with (renamed or replaced since)` };
  }
  return { primaryKey: names };
}

/** Whether a shape describes the rows of a relation message: the same columns, names and types, in order. */
function describesRelation(shape: TableShape, relation: RelationShape): boolean {
  if (shape.dropped) return false;
  const published = shape.columns.filter((c) => !c.generated);
  return published.length === relation.columns.length && published.every((c, i) => c.name === relation.columns[i].name && c.typeOid === relation.columns[i].typeOid);
}
