/**
 * The writes of a revert and the optimistic check before them: kept apart from the reads because
 * these are the only statements of the history API that change application tables.
 */
import { SqlParams, ident, type BuiltSql } from './sql-params';
import { liveName, type LiveTable } from './trail.sql';

/** Equality of the live row `t` and an image `img`, on the given columns, by their text form (works for every type). */
function sameColumns(columns: string[]): string {
  return columns.length ? columns.map((c) => `t.${ident(c)}::text IS NOT DISTINCT FROM img.${ident(c)}::text`).join(' AND ') : 'true';
}

function keyMatchImage(live: LiveTable, tAlias: string, imgAlias: string): string {
  return live.keyColumns.map((k) => `${tAlias}.${ident(k.name)} = ${imgAlias}.${ident(k.name)}`).join(' AND ');
}

/**
 * Locks the live row the image's key points at and tells whether it still equals the image on
 * `compare` columns. No row: the record does not exist.
 */
export function lockAndCompareSql(live: LiveTable, imageJson: string, compare: string[]): BuiltSql {
  const q = new SqlParams();
  const L = liveName(live);
  return q.build(`SELECT (${sameColumns(compare)}) AS same
    FROM ${L} t, jsonb_populate_record(NULL::${L}, ${q.p(imageJson)}::jsonb) img
    WHERE ${keyMatchImage(live, 't', 'img')} FOR UPDATE OF t`);
}

/** Puts `setColumns` back to their values in `beforeJson` on the row identified by `afterJson`'s key. */
export function revertUpdateSql(live: LiveTable, beforeJson: string, afterJson: string, setColumns: string[]): BuiltSql {
  const q = new SqlParams();
  const L = liveName(live);
  return q.build(`UPDATE ${L} AS t SET ${setColumns.map((c) => `${ident(c)} = b.${ident(c)}`).join(', ')}
    FROM jsonb_populate_record(NULL::${L}, ${q.p(beforeJson)}::jsonb) b, jsonb_populate_record(NULL::${L}, ${q.p(afterJson)}::jsonb) img
    WHERE ${keyMatchImage(live, 't', 'img')}`);
}

export function revertDeleteSql(live: LiveTable, beforeJson: string, columns: string[], overridingIdentity: boolean): BuiltSql {
  const q = new SqlParams();
  const L = liveName(live);
  const cols = columns.map(ident).join(', ');
  return q.build(`INSERT INTO ${L} (${cols})${overridingIdentity ? ' OVERRIDING SYSTEM VALUE' : ''}
    SELECT ${columns.map((c) => `b.${ident(c)}`).join(', ')} FROM jsonb_populate_record(NULL::${L}, ${q.p(beforeJson)}::jsonb) b`);
}

export function revertCreateSql(live: LiveTable, afterJson: string): BuiltSql {
  const q = new SqlParams();
  const L = liveName(live);
  return q.build(`DELETE FROM ${L} AS t USING jsonb_populate_record(NULL::${L}, ${q.p(afterJson)}::jsonb) img WHERE ${keyMatchImage(live, 't', 'img')}`);
}

/** A foreign key between two tables of a reverted transaction, as the catalog has it now. */
export interface ForeignKey {
  /** Schema-qualified, quoted: ready for SET CONSTRAINTS. */
  name: string;
  /** For messages: `schema.name`. */
  label: string;
  childSchema: string;
  childTable: string;
  childColumns: string[];
  parentSchema: string;
  parentTable: string;
  parentColumns: string[];
  deferrable: boolean;
}

/**
 * Every foreign key whose referencing and referenced tables are both among `tables`, in one
 * catalog query. Column lists keep the constraint's column order, so child column i references
 * parent column i.
 */
export function foreignKeysSql(tables: Array<{ schema: string; table: string }>): BuiltSql {
  const q = new SqlParams();
  // Parameters as JSON: MikroORM would expand an array parameter into a list.
  const involved = `(SELECT x.s, x.t FROM jsonb_to_recordset(${q.p(JSON.stringify(tables.map((t) => ({ s: t.schema, t: t.table }))))}::jsonb) AS x(s text, t text))`;
  const columnsOf = (keys: string, rel: string) =>
    `ARRAY(SELECT a.attname::text FROM unnest(con.${keys}) WITH ORDINALITY AS k(attnum, ord)
       JOIN pg_attribute a ON a.attrelid = con.${rel} AND a.attnum = k.attnum ORDER BY k.ord)`;
  return q.build(`SELECT format('%I.%I', cn.nspname, con.conname) AS name, cn.nspname || '.' || con.conname AS label,
      cs.nspname AS "childSchema", cc.relname AS "childTable", ${columnsOf('conkey', 'conrelid')} AS "childColumns",
      ps.nspname AS "parentSchema", pc.relname AS "parentTable", ${columnsOf('confkey', 'confrelid')} AS "parentColumns",
      con.condeferrable AS deferrable
    FROM pg_constraint con
    JOIN pg_namespace cn ON cn.oid = con.connamespace
    JOIN pg_class cc ON cc.oid = con.conrelid JOIN pg_namespace cs ON cs.oid = cc.relnamespace
    JOIN pg_class pc ON pc.oid = con.confrelid JOIN pg_namespace ps ON ps.oid = pc.relnamespace
    WHERE con.contype = 'f'
      AND (cs.nspname::text, cc.relname::text) IN ${involved}
      AND (ps.nspname::text, pc.relname::text) IN ${involved}`);
}

/** Defers the given (DEFERRABLE) constraints until commit: names from {@link ForeignKey.name}. */
export function deferConstraintsSql(names: string[]): BuiltSql {
  return { sql: `SET CONSTRAINTS ${names.join(', ')} DEFERRED`, params: [] };
}

export function readSettingsSql(names: string[]): BuiltSql {
  const q = new SqlParams();
  return q.build(`SELECT n AS name, current_setting(n) AS value FROM jsonb_array_elements_text(${q.p(JSON.stringify(names))}::jsonb) AS n`);
}

/** SET LOCAL of each setting: it ends with the transaction, and the caller's values are put back after use. */
export function setSettingsSql(settings: ReadonlyArray<readonly [string, string]>): BuiltSql {
  const q = new SqlParams();
  return q.build(`SELECT set_config(s.key, s.value, true) FROM jsonb_each_text(${q.p(JSON.stringify(Object.fromEntries(settings)))}::jsonb) AS s`);
}

/**
 * The live row's `columns` as their types' output functions print them (what pgoutput sends and
 * the capture hashes): format('%s') calls the output function, where a ::text cast may not
 * (booleans cast to 'true', print as 't').
 */
export function liveTextSql(live: LiveTable, imageJson: string, columns: string[]): BuiltSql {
  const q = new SqlParams();
  const L = liveName(live);
  const list = columns.map((c, i) => `CASE WHEN t.${ident(c)} IS NULL THEN NULL ELSE format('%s', t.${ident(c)}) END AS c${i}`).join(', ');
  return q.build(`SELECT ${list} FROM ${L} t, jsonb_populate_record(NULL::${L}, ${q.p(imageJson)}::jsonb) img WHERE ${keyMatchImage(live, 't', 'img')}`);
}
