// The schema log: for each captured table, its shape (OID, name, columns, primary key) after each
// DDL on it, in stream order. Capture's event trigger emits a shape as a transactional message in
// the DDL's own transaction (schema-log.sql.ts); the worker stores it with the changes of its batch
// and, when a relation message comes, asks which shape was in force at that point of the stream.
// That is how a change decoded long after a key rename, a DROP PRIMARY KEY or a drop-and-recreate
// still gets the key of its own time, where today's catalog knows only the key of now.
import type { Client } from 'pg';
import { quoteIdent } from '../shared/sql-quote';
import { SCHEMA_LOG_TABLE } from '../trail/changes-table';

export interface ShapeColumn {
  attnum: number;
  name: string;
  typeOid: number;
  /** format_type() text, e.g. `character varying(10)`. */
  type: string;
  /** Generated columns are not in pgoutput's relation message. */
  generated: boolean;
}

/** A table as one DDL left it. */
export interface TableShape {
  oid: number;
  schema: string;
  table: string;
  columns: ShapeColumn[];
  /** Primary key column names in key order; empty when the table had none. */
  primaryKey: string[];
  /** The table was dropped here: no change of this OID follows. */
  dropped: boolean;
  /** This DDL created the table: no change of this OID comes before it. */
  created: boolean;
}

/** A shape at its place in the stream. */
export interface SchemaLogEntry extends TableShape {
  /** Commit LSN of the DDL's transaction and the LSN where the message ends, as integers: the stream order. */
  commitPosition: bigint;
  position: bigint;
  committedAt: string;
}

/** Largest shape message accepted (a table has at most 1,600 columns of 63-byte names). */
const MAX_SHAPE_BYTES = 1024 * 1024;

/**
 * The shape in a `_bemi_schema` message, or the reason it is not one. Any role may emit such a
 * message, so it is validated field by field; an invalid one is reported and never used.
 */
export function parseTableShape(content: Buffer): TableShape | string {
  if (content.length > MAX_SHAPE_BYTES) return `a schema message of ${content.length} bytes is over the ${MAX_SHAPE_BYTES}-byte limit`;
  let value: unknown;
  try {
    value = JSON.parse(content.toString('utf8'));
  } catch {
    return 'a schema message is not JSON';
  }
  const v = value as Partial<Record<keyof TableShape, unknown>> | null;
  const isName = (x: unknown): x is string => typeof x === 'string' && x.length > 0 && x.length <= 256;
  const isOid = (x: unknown): x is number => Number.isInteger(x) && (x as number) > 0 && (x as number) < 2 ** 32;
  if (!v || typeof v !== 'object' || !isOid(v.oid) || !isName(v.schema) || !isName(v.table) || typeof v.dropped !== 'boolean' || typeof v.created !== 'boolean') {
    return 'a schema message lacks its table (oid, schema, table, dropped, created)';
  }
  const key = (value as { key?: unknown }).key;
  if (!Array.isArray(v.columns) || !Array.isArray(key)) return 'a schema message lacks its columns or key';
  const columns: ShapeColumn[] = [];
  for (const c of v.columns as unknown[]) {
    const col = c as Partial<Record<keyof ShapeColumn, unknown>> | null;
    if (!col || !Number.isInteger(col.attnum) || !isName(col.name) || !isOid(col.typeOid) || typeof col.type !== 'string' || typeof col.generated !== 'boolean') {
      return 'a schema message has a malformed column';
    }
    columns.push({ attnum: col.attnum as number, name: col.name, typeOid: col.typeOid, type: col.type, generated: col.generated });
  }
  if (!key.every(isName) || !key.every((k) => columns.some((c) => c.name === k))) return 'a schema message names a key column it does not have';
  return { oid: v.oid, schema: v.schema, table: v.table, columns, primaryKey: key as string[], dropped: v.dropped, created: v.created };
}

/** Every entry of one source database, by table OID, each list in stream order. */
export class SchemaLog {
  private readonly byOid = new Map<number, SchemaLogEntry[]>();

  /** Adds an entry; false when one at the same place was known (a re-delivered message). */
  add(entry: SchemaLogEntry): boolean {
    let list = this.byOid.get(entry.oid);
    if (!list) this.byOid.set(entry.oid, (list = []));
    let i = list.length;
    while (i > 0 && compare(list[i - 1], entry.commitPosition, entry.position) > 0) i--;
    if (i > 0 && compare(list[i - 1], entry.commitPosition, entry.position) === 0) return false;
    list.splice(i, 0, entry);
    return true;
  }

  /**
   * The shape of `oid` in force for a change of the transaction committed at `commitPosition`: its
   * latest entry up to that transaction. Entries of that very transaction are present only once
   * decoded (the destination never holds entries of a transaction that will be delivered again,
   * see WritePipeline.addSchemaEntry), so they are those before the change. LSNs cannot order a
   * message against a row within a transaction: a message's LSN is where it ends.
   */
  inForce(oid: number, commitPosition: bigint): SchemaLogEntry | undefined {
    const list = this.byOid.get(oid);
    if (!list) return undefined;
    for (let i = list.length - 1; i >= 0; i--) if (list[i].commitPosition <= commitPosition) return list[i];
    return undefined;
  }
}

/** Stream order of an entry against a position: negative when the entry comes first. */
function compare(e: SchemaLogEntry, commitPosition: bigint, position: bigint): number {
  if (e.commitPosition !== commitPosition) return e.commitPosition < commitPosition ? -1 : 1;
  return e.position === position ? 0 : e.position < position ? -1 : 1;
}

/** The destination's schema log (`_bemi_schema_log` in the trail's schema) for one source database. */
export class SchemaLogTable {
  private readonly table: string;
  constructor(schema: string) {
    this.table = `${quoteIdent(schema)}.${quoteIdent(SCHEMA_LOG_TABLE)}`;
  }

  /** Whether the table exists (a trail created before the schema log, with ensureSchema off, lacks it). */
  async exists(client: Client): Promise<boolean> {
    const { rows } = await client.query<{ t: string | null }>(`SELECT to_regclass($1) AS t`, [this.table]);
    return rows[0].t !== null;
  }

  async load(client: Client, database: string): Promise<SchemaLog> {
    const { rows } = await client.query<{ commit_position: string; position: string; committed_at: Date; table_oid: string; schema: string; table: string; columns: ShapeColumn[]; primary_key: string[]; dropped: boolean; created: boolean }>(
      `SELECT commit_position::text, position::text, committed_at, table_oid::text, schema, "table", columns, primary_key, dropped, created
         FROM ${this.table} WHERE database = $1 ORDER BY commit_position, position`,
      [database],
    );
    const log = new SchemaLog();
    for (const r of rows) {
      log.add({
        commitPosition: BigInt(r.commit_position),
        position: BigInt(r.position),
        committedAt: r.committed_at.toISOString(),
        oid: Number(r.table_oid),
        schema: r.schema,
        table: r.table,
        columns: r.columns,
        primaryKey: r.primary_key,
        dropped: r.dropped,
        created: r.created,
      });
    }
    return log;
  }

  /** OIDs of the tables with at least one entry. */
  async knownTables(client: Client, database: string): Promise<Set<number>> {
    const { rows } = await client.query<{ oid: string }>(`SELECT DISTINCT table_oid::text AS oid FROM ${this.table} WHERE database = $1`, [database]);
    return new Set(rows.map((r) => Number(r.oid)));
  }

  /** Stores entries (those already stored are skipped: re-delivery after a crash is harmless). */
  async insert(client: Client, database: string, entries: readonly SchemaLogEntry[]): Promise<void> {
    if (entries.length === 0) return;
    await client.query(
      `INSERT INTO ${this.table} (database, commit_position, position, committed_at, table_oid, schema, "table", columns, primary_key, dropped, created)
       SELECT $1, * FROM unnest($2::bigint[], $3::bigint[], $4::timestamptz[], $5::bigint[], $6::text[], $7::text[], $8::jsonb[], $9::jsonb[], $10::boolean[], $11::boolean[])
       ON CONFLICT DO NOTHING`,
      [
        database,
        entries.map((e) => e.commitPosition.toString()),
        entries.map((e) => e.position.toString()),
        entries.map((e) => e.committedAt),
        entries.map((e) => e.oid),
        entries.map((e) => e.schema),
        entries.map((e) => e.table),
        entries.map((e) => JSON.stringify(e.columns)),
        entries.map((e) => JSON.stringify(e.primaryKey)),
        entries.map((e) => e.dropped),
        entries.map((e) => e.created),
      ],
    );
  }
}
