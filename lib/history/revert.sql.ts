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
