/**
 * The vocabulary every history statement shares — where the trail is, which live table a query
 * is about, the trail's key text and database filter — so that the reader, time travel and revert
 * SQL address the trail identically (the indexes only match identical expressions).
 *
 * Order of changes: (commit_position, seq) is the true order. Per-record lookups walk the
 * btree ("table", primary_key, committed_at, commit_position, seq) by time, ties in that order.
 */
import type { ValueKind } from '../trail/json-values';
import type { TablePeriod } from './table-identity';
import { ident, qualified, type SqlParams } from './sql-params';

/** The trail's tables, quoted and qualified for SQL, and whose writes to look at (from the TrailLocation). */
export interface TrailTables {
  changes: string; // qualified changes table
  captureState: string; // qualified capture state table
  captureStateName: { schema: string; table: string };
  database: string | null; // null: current_database()
  /** The schema log beside `changes` (qualified); absent in hand-made locations. */
  schemaLog?: string;
  /** The retention horizon table, when the trail has it (history then refuses moments before a table's horizon). */
  horizons?: string;
  /** Whether `changes` has `previous_key` (trails made before it lack it until `up` runs again). */
  previousKeys?: boolean;
  /** Whether `changes` has `role` and `session_role` (the same). */
  roles?: boolean;
  /** Whether `changes` has `context_seq` (rows may then share a holder's context; the same). */
  contextSeq?: boolean;
}

export interface KeyColumn {
  name: string;
  type: string; // format_type() of the column
  /** How the capture encodes the column's values in JSON (see lib/capture/json-values.ts). */
  kind: ValueKind;
}

/** The live table a history query is about. */
export interface LiveTable {
  schema: string;
  table: string;
  keyColumns: KeyColumn[];
  /** False when every column is part of the key (a key-only image is then complete). */
  hasNonKeyColumns?: boolean;
  /** Its names and column names through time (schema log), when they differ from today's plain reading. */
  periods?: TablePeriod[];
  /** Some UPDATE changed one of its keys (tableAt() then follows both trails of such a change). */
  keyChanges?: boolean;
}

/** A position (commit_position, seq) parsed from `row(...)::text`, or null. */
export interface TrailPosition {
  commitPosition: string;
  seq: number;
}

export const COMMIT_TS = `to_char(c.committed_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"')`;

export function databaseIs(q: SqlParams, loc: TrailTables, alias = 'c'): string {
  return `${alias}.database = coalesce(${q.p(loc.database)}::text, current_database())`;
}

/**
 * The same text the capture writes into `primary_key`: a single key's value as text; for a
 * composite key a JSON array (no spaces) of the values encoded as in `after` (numbers and
 * booleans bare, everything else as a JSON string). Built from typed expressions, so PostgreSQL's
 * own output functions give the text, exactly as pgoutput does.
 */
export function keyTextSql(parts: Array<{ expr: string; kind: ValueKind }>): string {
  if (parts.length === 1) return `(${parts[0].expr})::text`;
  const encode = ({ expr, kind }: { expr: string; kind: ValueKind }) => {
    const text = `(${expr})::text`;
    // No '?' in these literals: MikroORM would take it for a placeholder.
    if (kind === 'number') return `CASE WHEN ${text} ~ '^-{0,1}[0-9]+([.][0-9]+){0,1}([eE][-+]{0,1}[0-9]+){0,1}$' THEN ${text} ELSE to_json(${text})::text END`;
    if (kind === 'bool') return `CASE WHEN (${expr}) THEN 'true' ELSE 'false' END`;
    if (kind === 'json') return text;
    return `to_json(${text})::text`;
  };
  return `('[' || concat_ws(',', ${parts.map(encode).join(', ')}) || ']')`;
}

/** Key text of user-supplied key values, cast through the column types (so `'00A1…'` uuids or `1.5` numerics match). */
export function keyTextOfValues(q: SqlParams, live: LiveTable, values: string[]): string {
  return keyTextSql(live.keyColumns.map((k, i) => ({ expr: `${q.p(values[i])}::${k.type}`, kind: k.kind })));
}

/** Key text of a live-table row. */
export function keyTextOfRow(live: LiveTable, alias: string): string {
  return keyTextSql(live.keyColumns.map((k) => ({ expr: `${alias}.${ident(k.name)}`, kind: k.kind })));
}

export function liveName(live: LiveTable): string {
  return qualified(live.schema, live.table);
}
