/**
 * The SQL of "the state at T" for one record (at()), and the probes tableAt() shares with it:
 * the table's TRUNCATEs around T, the capture start, and filling unchanged-TOAST markers. The
 * rule these implement is in docs/history.md.
 */
import { UNCHANGED_TOAST_MARKER } from '../trail/json-values';
import { quoteIdent, quoteLiteral } from '../shared/sql-quote';
import { SqlParams, ident, type BuiltSql } from './sql-params';
import { COMMIT_TS, databaseIs, keyTextOfValues, liveName, type LiveTable, type TrailTables } from './trail.sql';
import { imageNow, tableIs } from './table-identity.sql';

/** The latest TRUNCATE of the table at or before T ('<=') or the first after it ('>'): one row (cp, seq) or none. */
export function truncateProbeSql(q: SqlParams, loc: TrailTables, live: LiveTable, atUpper: string, cmp: '<=' | '>', columns = 'c.commit_position AS cp, c.seq'): string {
  const dir = cmp === '<=' ? 'DESC' : 'ASC';
  return `SELECT ${columns} FROM ${loc.changes} c
      WHERE ${tableIs(q, live)} AND c.primary_key IS NULL AND c.committed_at ${cmp} ${q.p(atUpper)}::timestamptz
        AND c.operation = 'TRUNCATE' AND ${databaseIs(q, loc)}
      ORDER BY c.committed_at ${dir}, c.commit_position ${dir}, c.seq ${dir} LIMIT 1`;
}

/**
 * Whether the capture state table exists (it does not before capture first ran: asking the
 * catalog keeps that a typed error instead of a SQL error that would abort the caller's
 * transaction).
 */
export function stateExistsSql(q: SqlParams, loc: TrailTables): string {
  return `to_regclass(${q.p(`${quoteIdent(loc.captureStateName.schema)}.${quoteIdent(loc.captureStateName.table)}`)}) IS NOT NULL`;
}

/**
 * `at()` in one round trip: the rule for "the state at T" (see docs/history.md) applied to one
 * record by cheap index probes (its last change at or before T, else its first change after it,
 * and the table's TRUNCATEs around T), then the chosen image as a typed row of the live table
 * (PostgreSQL converts the captured text, unchanged-TOAST markers filled from earlier images),
 * or the live row when the trail knows nothing of the key.
 *
 * `_bemi_decision`: 'image' / 'live' (a row follows), 'none' (no row then), 'noimage' (the image
 * that would decide has no old values), 'truncated' (a later TRUNCATE erased the only image).
 * `_bemi_unresolved`: TOAST markers nothing could fill.
 */
export function recordAtSql(loc: TrailTables, live: LiveTable, keyValues: string[], atUpper: string): BuiltSql {
  const q = new SqlParams();
  const L = liveName(live);
  const t = `${q.p(atUpper)}::timestamptz`;
  // Scalar subqueries returning whole `changes` rows, each level fenced by OFFSET 0: planned one by
  // one instead of as a join of seven relations, which cost more planning than executing.
  const change = (cmp: '<=' | '>') => {
    const dir = cmp === '<=' ? 'DESC' : 'ASC';
    const probe = (column: string) => `(SELECT c FROM ${loc.changes} c
        WHERE ${tableIs(q, live)} AND c.${column} = k.pk AND c.committed_at ${cmp} ${t}
          AND ${databaseIs(q, loc)}
        ORDER BY c.committed_at ${dir}, c.commit_position ${dir}, c.seq ${dir} LIMIT 1)`;
    if (!loc.previousKeys) return probe('primary_key');
    // An UPDATE that changed the key belongs to both trails: the new key's (primary_key) and the
    // old key's (previous_key, a small partial index). The nearer of the two decides.
    return `(SELECT u.c FROM (${probe('primary_key')} UNION ALL ${probe('previous_key')}) u(c)
        ORDER BY (u.c).committed_at ${dir}, (u.c).commit_position ${dir}, (u.c).seq ${dir} LIMIT 1)`;
  };
  // The key left by an UPDATE of its key (its record no longer exists after), or reached by one
  // (its record did not exist before): like a DELETE and a CREATE of that key.
  const leaves = (r: string) => (loc.previousKeys ? ` OR (${r}).previous_key = b.pk` : '');
  const arrives = (r: string) => (loc.previousKeys ? ` OR ((${r}).previous_key IS NOT NULL AND (${r}).primary_key = b.pk)` : '');
  const truncate = (cmp: '<=' | '>') => `(${truncateProbeSql(q, loc, live, atUpper, cmp, 'c')})`;
  const pos = (r: string) => `((${r}).commit_position, (${r}).seq)`;
  const pCounts = `(b.p).id IS NOT NULL AND ((b.tb).id IS NULL OR ${pos('b.p')} > ${pos('b.tb')})`;
  const keyArray = `ARRAY[${live.keyColumns.map((k) => `${q.p(k.name)}::text`).join(', ')}]`;
  const noImage = live.hasNonKeyColumns === false ? 'false' : `((b.n).before - ${keyArray}) = '{}'::jsonb`;
  const keyMatch = live.keyColumns.map((k, i) => `t.${ident(k.name)} = ${q.p(keyValues[i])}::${k.type}`).join(' AND ');
  const marker = quoteLiteral(UNCHANGED_TOAST_MARKER);
  const fill = toastFillSql(q, loc, live, 'd.img', 'd.pk', 'd.src_cp', 'd.src_seq');
  return q.build(`SELECT s.state_exists AS _bemi_state_exists, s.horizon AS _bemi_horizon, s.pk AS _bemi_key, s.decision AS _bemi_decision,
      CASE WHEN s.toast IS NOT NULL THEN (SELECT string_agg(u, ', ') FROM jsonb_array_elements_text(s.toast -> 'unresolved') u) END AS _bemi_unresolved, r.*
    FROM (
      SELECT d.*, CASE WHEN d.decision = 'image' AND strpos(d.img::text, ${marker}) > 0
        THEN (SELECT jsonb_strip_nulls(jsonb_build_object('fill', f.fill, 'unresolved', to_jsonb(f.unresolved))) FROM (${fill}) f) END AS toast
      FROM (
        SELECT b.state_exists, b.horizon, b.pk,
          CASE
            WHEN ${pCounts} THEN CASE WHEN (b.p).operation = 'DELETE'${leaves('b.p')} THEN 'none' ELSE 'image' END
            WHEN (b.tb).id IS NOT NULL THEN 'none'
            WHEN (b.n).id IS NOT NULL AND ((b.ta).id IS NULL OR ${pos('b.n')} < ${pos('b.ta')})
              THEN CASE WHEN (b.n).operation = 'CREATE'${arrives('b.n')} THEN 'none' WHEN ${noImage} THEN 'noimage' ELSE 'image' END
            WHEN (b.ta).id IS NOT NULL THEN 'truncated'
            ELSE 'live'
          END AS decision,
          ${imageNow(q, live, `CASE WHEN ${pCounts} THEN (b.p).after ELSE (b.n).before END`, `CASE WHEN ${pCounts} THEN (b.p).commit_position ELSE (b.n).commit_position END`, `CASE WHEN ${pCounts} THEN (b.p).position ELSE (b.n).position END`)} AS img,
          CASE WHEN ${pCounts} THEN (b.p).commit_position ELSE (b.n).commit_position END AS src_cp,
          CASE WHEN ${pCounts} THEN (b.p).seq ELSE (b.n).seq END AS src_seq
        FROM (
          -- The first change after T matters only when there is none at or before it.
          SELECT k.*, CASE WHEN (k.p).id IS NULL THEN ${change('>')} END AS n
          FROM (
            SELECT k.*, ${change('<=')} AS p, ${truncate('<=')} AS tb, ${truncate('>')} AS ta
            FROM (SELECT ${stateExistsSql(q, loc)} AS state_exists, ${horizonSql(q, loc, live)} AS horizon, ${keyTextOfValues(q, live, keyValues)} AS pk) k OFFSET 0
          ) k OFFSET 0
        ) b OFFSET 0
      ) d OFFSET 0
    ) s
    LEFT JOIN LATERAL (
      SELECT x.* FROM jsonb_populate_record(NULL::${L},
        (s.img || coalesce(s.toast -> 'fill', '{}'::jsonb)) - ARRAY(SELECT jsonb_array_elements_text(coalesce(s.toast -> 'unresolved', '[]'::jsonb)))) x
      WHERE s.decision = 'image'
      UNION ALL
      SELECT t.* FROM ${L} t WHERE s.decision = 'live' AND ${keyMatch}
    ) r ON true`);
}

/** Casts user-supplied key values to the key columns' types (fails the way a bad key argument does). */
export function keyCheckSql(live: LiveTable, keyValues: string[]): BuiltSql {
  const q = new SqlParams();
  return q.build(`SELECT ${keyTextOfValues(q, live, keyValues)} AS pk`);
}

/**
 * For an image with unchanged-TOAST markers (an UPDATE on a table without REPLICA IDENTITY
 * FULL leaves out large values it did not change): each marked column's value from the latest
 * earlier image of the same record that holds one. `fill` = found values, `unresolved` = the
 * rest. A cheap strpos() gate skips the work for the (almost all) images without markers.
 */
export function toastFillSql(q: SqlParams, loc: TrailTables, live: LiveTable, image: string, pk: string, cp: string, seq: string): string {
  const marker = `${quoteLiteral(JSON.stringify(UNCHANGED_TOAST_MARKER))}::jsonb`;
  return `SELECT jsonb_object_agg(m.key, v.value) FILTER (WHERE v.value IS NOT NULL) AS fill,
             array_agg(m.key) FILTER (WHERE v.value IS NULL) AS unresolved
      FROM jsonb_each(${image}) m
      LEFT JOIN LATERAL (
        SELECT c.after -> m.key AS value FROM ${loc.changes} c
        WHERE ${tableIs(q, live)} AND c.primary_key = ${pk} AND ${databaseIs(q, loc)}
          AND (c.commit_position, c.seq) < (${cp}, ${seq}) AND c.after -> m.key <> ${marker}
        ORDER BY c.committed_at DESC, c.commit_position DESC, c.seq DESC LIMIT 1
      ) v ON true
      WHERE strpos(${image}::text, ${quoteLiteral(UNCHANGED_TOAST_MARKER)}) > 0 AND m.value = ${marker}`;
}

/**
 * The table's retention horizon as text (null: never pruned, or a trail without the horizon
 * table): moments before it are refused (see docs/retention.md). Over every name the table had.
 */
export function horizonSql(q: SqlParams, loc: TrailTables, live: LiveTable): string {
  if (!loc.horizons) return 'NULL::text';
  const names = [...new Set([live.table, ...(live.periods ?? []).map((p) => p.table)])];
  return `(SELECT ${COMMIT_TS.replace('c.committed_at', 'max(h.horizon)')} FROM ${loc.horizons} h WHERE h."table" IN (${names.map((n) => q.p(n)).join(', ')}))`;
}

export function captureStartSql(loc: TrailTables): BuiltSql {
  const q = new SqlParams();
  return q.build(
    `SELECT ${COMMIT_TS.replace('c.committed_at', 'min(s.started_at)')} AS started
     FROM ${loc.captureState} s WHERE s.database = coalesce(${q.p(loc.database)}::text, current_database())`,
  );
}
