/**
 * The SQL of tableAt(): a whole table at T in one statement. Apart from at()'s because finding
 * every key that might have had a row at T is its own problem, with three strategies that give
 * the same rows at different costs (see TableAtStrategy and docs/history.md).
 */
import { UNCHANGED_TOAST_MARKER } from '../trail/json-values';
import { quoteLiteral } from '../shared/sql-quote';
import { SqlParams, ident, type BuiltSql } from './sql-params';
import { databaseIs, keyTextOfRow, liveName, type LiveTable, type TrailTables, type TrailPosition } from './trail.sql';
import { horizonSql, stateExistsSql, toastFillSql, truncateProbeSql } from './time-travel.sql';
import { imageNow, tableIs } from './table-identity.sql';

/** The same as `(cp, seq)` text, for the preflight of tableAt(). */
function truncateSql(q: SqlParams, loc: TrailTables, live: LiveTable, atUpper: string, cmp: '<=' | '>'): string {
  return `(SELECT row(z.cp::text, z.seq)::text FROM (${truncateProbeSql(q, loc, live, atUpper, cmp)}) z)`;
}

/**
 * Capture state presence, the TRUNCATEs of the table around T, whether T is at or after the
 * table's latest change (by stream order, through the history index) and whether the trail has
 * its deleted-keys index, in one round trip.
 */
export function preflightSql(loc: TrailTables, live: LiveTable, atUpper: string): BuiltSql {
  const q = new SqlParams();
  const settled = `(SELECT c.committed_at <= ${q.p(atUpper)}::timestamptz FROM ${loc.changes} c
      WHERE ${tableIs(q, live)} AND ${databaseIs(q, loc)}
      ORDER BY c.commit_position DESC, c.seq DESC LIMIT 1)`;
  // The deleted-keys index the 'live' strategy needs (trails created before it existed lack it).
  const deletedIndex = `EXISTS (SELECT 1 FROM pg_index i WHERE i.indrelid = to_regclass(${q.p(loc.changes)}) AND i.indisvalid
      AND pg_get_expr(i.indpred, i.indrelid) = $$(operation = 'DELETE'::text)$$)`;
  // Whether any UPDATE changed a key of the table (the small previous_key index): only then do the
  // probes look at both trails of such a change (see lastChangeSql).
  const keyChanges = loc.previousKeys ? `EXISTS (SELECT 1 FROM ${loc.changes} c WHERE ${tableIs(q, live)} AND c.previous_key IS NOT NULL AND ${databaseIs(q, loc)})` : 'false';
  return q.build(
    `SELECT ${stateExistsSql(q, loc)} AS state_exists, ${horizonSql(q, loc, live)} AS horizon, ${keyChanges} AS key_changes, ${truncateSql(q, loc, live, atUpper, '<=')} AS truncate_before, ${truncateSql(q, loc, live, atUpper, '>')} AS truncate_after,
      ${settled} AS settled, ${deletedIndex} AS deleted_index`,
  );
}

function positionOrNull(q: SqlParams, pos: TrailPosition | null): { cp: string; seq: string } {
  return { cp: `${q.p(pos?.commitPosition ?? null)}::bigint`, seq: `${q.p(pos?.seq ?? null)}::int` };
}

/**
 * How tableAt() finds the keys to look at (the same rows from each, only the work differs —
 * except that the two walks over the trail's keys still show a renumbered row under its old key):
 * - 'keys': a recursive skip scan over the record index ("table", primary_key, ...), one
 *   descent per distinct key, then per key one probe for its last change at or before T;
 * - 'latest': the same skip scan run backwards, each step reading the key's latest change (one
 *   descent per key). When that change is at or before T it decides, with no further probe;
 *   otherwise the key gets the probes of 'keys'. Meant for T at or after the table's last change
 *   (tableAt(now)), where every key is settled in one descent.
 * - 'live': the keys are the live table's keys plus the keys of the trail's DELETEs (a partial
 *   index), then the probes of 'keys'. No walk over the trail's keys at all. A key in neither set
 *   has no row now and was never deleted: it vanished by a TRUNCATE (so only valid when no TRUNCATE
 *   follows T) or by a primary-key UPDATE, whose row at T the new key's first `before` gives.
 */
export type TableAtStrategy = 'keys' | 'latest' | 'live';

/**
 * The state of one table at T, as jsonb rows ready for `jsonb_populate_record`: per key, the
 * `after` of its last change at or before T (nothing when that is a DELETE or a TRUNCATE came
 * later), else the `before` of its first change after T (nothing when that is a CREATE).
 */
function trailStateSql(
  q: SqlParams,
  loc: TrailTables,
  live: LiveTable,
  atUpper: string,
  truncBefore: TrailPosition | null,
  truncAfter: TrailPosition | null,
  strategy: TableAtStrategy,
  window: boolean,
): string {
  const tb = positionOrNull(q, truncBefore);
  const ta = positionOrNull(q, truncAfter);
  const t = `${q.p(atUpper)}::timestamptz`;
  const pCounts = `p.operation IS NOT NULL AND (${tb.cp} IS NULL OR (p.commit_position, p.seq) > (${tb.cp}, ${tb.seq}))`;
  const nCounts = `n.operation IS NOT NULL AND (${ta.cp} IS NULL OR (n.commit_position, n.seq) < (${ta.cp}, ${ta.seq}))`;
  // source: 'trail' = the trail decides (data NULL = did not exist), 'unknown' = a later TRUNCATE
  // erased the only image, 'live' = the trail knows nothing about the key.
  // Without REPLICA IDENTITY FULL an UPDATE's before image is empty and a DELETE's holds only the
  // key: such an image cannot tell the earlier state, which is reported ('noimage'), not guessed.
  const keyArray = `ARRAY[${live.keyColumns.map((k) => `${q.p(k.name)}::text`).join(', ')}]`;
  const noImage = live.hasNonKeyColumns === false ? 'false' : `(n.before - ${keyArray}) = '{}'::jsonb`;
  const moveColumns = live.keyChanges ? ', c.primary_key, c.previous_key' : ', NULL::text, NULL::text';
  const probe = (bound: string) => lastChangeSql(q, loc, live, t, `c.operation, c.after, c.commit_position, c.seq, c.position${moveColumns}`, bound);
  // A key left by an UPDATE of its key no longer exists after it; one reached by it did not exist before.
  const leaves = live.keyChanges ? ' OR p.previous_key = k.pk' : '';
  const arrives = live.keyChanges ? ' OR (n.previous_key IS NOT NULL AND n.primary_key = k.pk)' : '';
  // A backward probe reads every entry of the key's run on its index page, up to ~150 for a
  // busy record. Most keys' last change before T is recent, so the window (see windowSql) is
  // probed first: when it holds a change, that is the answer and only the window was read;
  // otherwise the unbounded probe runs (Append stops at the first row).
  const prevProbe = !window
    ? probe('')
    : `SELECT w.* FROM ((${probe(' AND c.committed_at >= (SELECT win.lo FROM win)')}) UNION ALL (${probe('')})) w LIMIT 1`;
  const prev =
    strategy !== 'latest'
      ? prevProbe
      : // The key's latest change decides when it is at or before T; else probe.
        `SELECT k.l_op, k.l_after, k.l_cp, k.l_seq, k.l_pos, NULL::text, NULL::text WHERE k.l_at <= ${t}
        UNION ALL
        (${probe('').replace('WHERE ', `WHERE k.l_at > ${t} AND `)})`;
  const marker = quoteLiteral(UNCHANGED_TOAST_MARKER);
  // Markers of unchanged TOAST values are filled (toastFillSql), only for the rare images that
  // hold one; what nothing fills is removed and reported as source 'toast'.
  const fill = toastFillSql(q, loc, live, 'z.data', 'z.pk', 'z.src_cp', 'z.src_seq');
  return `SELECT y.pk,
      CASE WHEN y.toast IS NULL THEN y.data
           ELSE (y.data || coalesce(y.toast -> 'fill', '{}'::jsonb)) - ARRAY(SELECT jsonb_array_elements_text(coalesce(y.toast -> 'unresolved', '[]'::jsonb))) END AS data,
      CASE WHEN y.toast -> 'unresolved' IS NOT NULL THEN 'toast' ELSE y.source END AS source,
      CASE WHEN y.toast IS NOT NULL THEN (SELECT string_agg(u, ', ') FROM jsonb_array_elements_text(y.toast -> 'unresolved') u) END AS detail
    FROM (
    SELECT z.*, CASE WHEN strpos(z.data::text, ${marker}) > 0
      THEN (SELECT jsonb_strip_nulls(jsonb_build_object('fill', f.fill, 'unresolved', to_jsonb(f.unresolved))) FROM (${fill}) f) END AS toast
    FROM (
    SELECT k.pk, p.commit_position AS src_cp, p.seq AS src_seq,
      CASE
        WHEN ${pCounts} THEN CASE WHEN p.operation = 'DELETE'${leaves} THEN NULL ELSE ${imageNow(q, live, 'p.after', 'p.commit_position', 'p.position')} END
        WHEN ${tb.cp} IS NOT NULL THEN NULL
        WHEN ${nCounts} THEN CASE WHEN n.operation = 'CREATE'${arrives} THEN NULL ELSE ${imageNow(q, live, 'n.before', 'n.commit_position', 'n.position')} END
      END AS data,
      CASE
        WHEN ${pCounts} OR ${tb.cp} IS NOT NULL THEN 'trail'
        WHEN ${nCounts} THEN CASE WHEN n.operation <> 'CREATE'${live.keyChanges ? ` AND NOT (n.previous_key IS NOT NULL AND n.primary_key = k.pk)` : ''} AND ${noImage} THEN 'noimage' ELSE 'trail' END
        WHEN ${ta.cp} IS NOT NULL THEN 'unknown'
        ELSE 'live'
      END AS source
    FROM keys k
    LEFT JOIN LATERAL (${prev}) p(operation, after, commit_position, seq, position, primary_key, previous_key) ON true
    LEFT JOIN LATERAL (${nextChangeSql(q, loc, live, t)}) n ON true
    WHERE k.pk IS NOT NULL
    OFFSET 0) z
    OFFSET 0) y`;
}

/**
 * `win.lo`: the start of the window that tableAt() probes first (see trailStateSql). From a
 * sample of the keys: how long before T each one's last change at or before T was; the 90th
 * percentile of that age is the window, so about nine keys in ten are settled by reading only
 * the window's entries. Adapts to the table (busy or quiet, T long after the last change). NULL
 * when no sampled key has a change by T: every key then takes the unbounded probe directly
 * (a NULL bound ends an index scan before it starts).
 *
 * The sample is every n-th key in key order, not the first rows of the table: rows stored (and
 * often changed) together have similar ages, and a sample of such neighbours once sized the
 * window to almost nothing, so nearly every key paid for two probes.
 */
function windowSql(q: SqlParams, loc: TrailTables, live: LiveTable, atUpper: string): string {
  const t = `${q.p(atUpper)}::timestamptz`;
  return `win AS (
      SELECT ${t} - percentile_disc(0.9) WITHIN GROUP (ORDER BY ${t} - l.committed_at) AS lo
      FROM (
        SELECT n.pk FROM (SELECT k.pk, row_number() OVER () AS i, count(*) OVER () AS total FROM keys k WHERE k.pk IS NOT NULL) n
        WHERE n.i % greatest(n.total / ${WINDOW_SAMPLE}, 1) = 0
      ) k
      CROSS JOIN LATERAL (${lastChangeSql(q, loc, live, t, 'c.committed_at')}) l
    )`;
}

/**
 * Key `k.pk`'s last change at or before `t` (ties in stream order), optionally only where
 * `bound` (an extra condition starting with AND) holds: the probe tableAt() makes per key and
 * the one its window is sized by, so both mean the same change. On a table whose keys changed,
 * an UPDATE of a key is a change of the old key too (previous_key), and the later of the two
 * probes decides.
 */
function lastChangeSql(q: SqlParams, loc: TrailTables, live: LiveTable, t: string, columns: string, bound = ''): string {
  const probe = (column: string, select: string) => `SELECT ${select} FROM ${loc.changes} c
      WHERE ${tableIs(q, live)} AND c.${column} = k.pk AND c.committed_at <= ${t}${bound}
        AND ${databaseIs(q, loc)}
      ORDER BY c.committed_at DESC, c.commit_position DESC, c.seq DESC LIMIT 1`;
  if (!live.keyChanges) return probe('primary_key', columns);
  const ordered = `${columns}, c.committed_at AS _at, c.commit_position AS _cp, c.seq AS _seq`;
  // The union's output keeps the columns' own names (callers read them as l.committed_at, ...).
  const names = columns.split(',').map((c, i) => /^c\.([a-z_]+)$/.exec(c.trim())?.[1] ?? `x${i}`);
  return `SELECT ${names.map((n) => `u.${n}`).join(', ')} FROM ((${probe('primary_key', ordered)}) UNION ALL (${probe('previous_key', ordered)})) u(${names.join(', ')}, _at, _cp, _seq)
      ORDER BY u._at DESC, u._cp DESC, u._seq DESC LIMIT 1`;
}

/** Key `k.pk`'s first change after `t`, when none at or before it counts (`p.operation IS NULL`); both trails as in lastChangeSql. */
function nextChangeSql(q: SqlParams, loc: TrailTables, live: LiveTable, t: string): string {
  const probe = (column: string) => `SELECT c.operation, c.before, c.commit_position, c.seq, c.position, c.primary_key, ${loc.previousKeys ? 'c.previous_key' : 'NULL::text'} AS previous_key, c.committed_at FROM ${loc.changes} c
      WHERE p.operation IS NULL AND ${tableIs(q, live)} AND c.${column} = k.pk AND c.committed_at > ${t}
        AND ${databaseIs(q, loc)}
      ORDER BY c.committed_at, c.commit_position, c.seq LIMIT 1`;
  if (!live.keyChanges) return probe('primary_key');
  return `SELECT u.* FROM ((${probe('primary_key')}) UNION ALL (${probe('previous_key')})) u ORDER BY u.committed_at, u.commit_position, u.seq LIMIT 1`;
}

/** Keys sampled to size the window (their probes cost about a millisecond together). */
const WINDOW_SAMPLE = 64;

/** The keys tableAt() looks at: the live table's and the DELETEs', or a skip scan over the trail's (see TableAtStrategy). */
function keysSql(q: SqlParams, loc: TrailTables, live: LiveTable, strategy: TableAtStrategy): string {
  const table = () => q.p(live.table);
  if (strategy === 'live') {
    // UNION (not ALL): a key deleted and created again is both live and in the DELETEs. Sorted
    // like the record index, so consecutive probes read neighbouring index pages (~10% faster).
    return `keys AS (
      SELECT u.pk FROM (
        SELECT ${keyTextOfRow(live, 't')} AS pk FROM ${liveName(live)} t
        UNION
        SELECT d.primary_key FROM ${loc.changes} d
        WHERE ${tableIs(q, live, 'd')} AND d.operation = 'DELETE' AND d.primary_key IS NOT NULL AND ${databaseIs(q, loc, 'd')}${
          // Keys an UPDATE changed are neither live nor deleted, yet had rows before it.
          live.keyChanges
            ? `
        UNION
        SELECT d.previous_key FROM ${loc.changes} d WHERE ${tableIs(q, live, 'd')} AND d.previous_key IS NOT NULL AND ${databaseIs(q, loc, 'd')}`
            : ''
        }
      ) u ORDER BY u.pk
    )`;
  }
  if (live.periods || live.keyChanges) {
    // A table with other names (or a predecessor of its name) in its trail: the skip scans walk
    // one name's keys, so the keys come from every period at once instead (rare and slower).
    const previous = live.keyChanges
      ? ` UNION SELECT c.previous_key FROM ${loc.changes} c WHERE ${tableIs(q, live)} AND c.previous_key IS NOT NULL AND ${databaseIs(q, loc)}`
      : '';
    return `keys AS (SELECT DISTINCT c.primary_key AS pk FROM ${loc.changes} c WHERE ${tableIs(q, live)} AND c.primary_key IS NOT NULL AND ${databaseIs(q, loc)}${previous})`;
  }
  if (strategy === 'keys') {
    return `keys AS (
      (SELECT c.primary_key AS pk FROM ${loc.changes} c WHERE c."table" = ${table()} AND c.primary_key IS NOT NULL ORDER BY c.primary_key LIMIT 1)
      UNION ALL
      SELECT (SELECT c.primary_key FROM ${loc.changes} c WHERE c."table" = ${table()} AND c.primary_key > k.pk ORDER BY c.primary_key LIMIT 1)
      FROM keys k WHERE k.pk IS NOT NULL
    )`;
  }
  const latest = (after: string) => `SELECT c.primary_key AS pk, c.operation AS l_op, c.after AS l_after, c.commit_position AS l_cp, c.seq AS l_seq, c.position AS l_pos, c.committed_at AS l_at
      FROM ${loc.changes} c WHERE c."table" = ${table()} AND ${after} AND c.schema = ${q.p(live.schema)} AND ${databaseIs(q, loc)}
      ORDER BY c.primary_key DESC, c.committed_at DESC, c.commit_position DESC, c.seq DESC LIMIT 1`;
  return `keys AS (
      (${latest('c.primary_key IS NOT NULL')})
      UNION ALL
      SELECT x.* FROM keys k CROSS JOIN LATERAL (${latest('c.primary_key < k.pk')}) x
    )`;
}

/** Every row of a table at T: trail state for keys with changes, the live row for keys without. */
export function tableAtSql(
  loc: TrailTables,
  live: LiveTable,
  atUpper: string,
  truncBefore: TrailPosition | null,
  truncAfter: TrailPosition | null,
  where: Array<{ column: string; values: unknown[] }>,
  limit: number | null,
  strategy: TableAtStrategy = 'keys',
  /** Probe a window before T first (see windowSql); off only to measure what it saves. */
  window = true,
): BuiltSql {
  const q = new SqlParams();
  const L = liveName(live);
  const keys = keysSql(q, loc, live, strategy);
  // The 'latest' walk settles keys by their latest change and probes without a window.
  const win = window && strategy !== 'latest' ? `, ${windowSql(q, loc, live, atUpper)}` : '';
  const state = trailStateSql(q, loc, live, atUpper, truncBefore, truncAfter, strategy, win !== '');
  const filter = where.length
    ? `WHERE ${where
        .map(({ column, values }) =>
          values.length === 0
            ? 'false'
            : `(${values.map((v) => (v === null ? `x.${ident(column)} IS NULL` : `x.${ident(column)} = ${q.p(v)}`)).join(' OR ')})`,
        )
        .join(' AND ')}`
    : '';
  const order = live.keyColumns.map((k) => `x.${ident(k.name)}`).join(', ');
  return q.build(`WITH RECURSIVE ${keys}${win},
    s AS (${state})
    SELECT x.* FROM (
      SELECT s.source AS _bemi_state, s.detail AS _bemi_detail, s.pk AS _bemi_key, r.* FROM s CROSS JOIN LATERAL jsonb_populate_record(NULL::${L}, s.data) r WHERE s.data IS NOT NULL
      UNION ALL
      SELECT 'live', NULL, NULL, t.* FROM ${L} t
      -- Live rows the trail knows nothing about (a hash anti-join against the keys already read).
      WHERE NOT EXISTS (SELECT 1 FROM s WHERE s.pk = ${keyTextOfRow(live, 't')} AND s.source <> 'live')
    ) x ${filter}
    ORDER BY ${order}${limit === null ? '' : ` LIMIT ${q.p(limit)}`}`);
}
