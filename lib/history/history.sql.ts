/**
 * Every SQL statement of the history API, in one place.
 *
 * Statements run through MikroORM's `em.execute()`, which inlines `?` parameters with proper
 * escaping (and which is where the Bemi context hook sees the revert writes). Two consequences:
 * a literal `?` must be written `\?` (only possible inside quoted identifiers, see `ident`), and
 * array parameters would expand to lists, so each value gets its own placeholder.
 *
 * Order of changes: (commit_position, seq) is the true order. Per-record lookups walk the
 * btree ("table", primary_key, committed_at, commit_position, seq) by time, ties in that order.
 */
import { UNCHANGED_TOAST_MARKER, type ValueKind } from '../trail/json-values';
import { quoteIdent, quoteLiteral } from '../shared/sql-quote';

export interface BuiltSql {
  sql: string;
  params: unknown[];
}

/**
 * Collects parameters in any order while a statement is assembled; `build()` renumbers them in
 * textual order. This lets fragments be composed (and a value be used twice) without counting.
 */
export class SqlParams {
  private readonly values: unknown[] = [];

  p(value: unknown): string {
    this.values.push(value === undefined ? null : value);
    return `\u0000${this.values.length - 1}\u0000`;
  }

  build(text: string): BuiltSql {
    const params: unknown[] = [];
    const sql = text.replace(/\u0000(\d+)\u0000/g, (_m, i: string) => {
      params.push(this.values[Number(i)]);
      return '?';
    });
    // MikroORM leaves a statement without parameters untouched, `\?` included.
    return params.length ? { sql, params } : { sql: sql.replace(/\\\?/g, '?'), params };
  }
}

/** Quotes an identifier; `?` is escaped for MikroORM's placeholder replacement. */
export function ident(name: string): string {
  return `"${name.replace(/"/g, '""').replace(/\?/g, '\\?')}"`;
}

export function qualified(schema: string, name: string): string {
  return `${ident(schema)}.${ident(name)}`;
}

/** Where the trail lives and whose writes to look at. */
export interface TrailLocation {
  changes: string; // qualified changes table
  captureState: string; // qualified capture state table
  captureStateName: { schema: string; table: string };
  database: string | null; // null: current_database()
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
}

const COMMIT_TS = `to_char(c.committed_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"')`;

/** Columns of a change row as the mapper expects them. Images come as text: the mapper parses them keeping numeric digits exact. */
const CHANGE_COLUMNS = `c.id::text AS id, c.primary_key, c.before::text AS before, c.after::text AS after, c.context, c.database, c.schema, c."table",
  c.operation, ${COMMIT_TS} AS commit_ts, c.transaction_id::text AS transaction_id,
  c.position::text AS position, c.commit_position::text AS commit_position, c.seq`;

function databaseIs(q: SqlParams, loc: TrailLocation, alias = 'c'): string {
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
function keyTextOfValues(q: SqlParams, live: LiveTable, values: string[]): string {
  return keyTextSql(live.keyColumns.map((k, i) => ({ expr: `${q.p(values[i])}::${k.type}`, kind: k.kind })));
}

/** Key text of a live-table row. */
function keyTextOfRow(live: LiveTable, alias: string): string {
  return keyTextSql(live.keyColumns.map((k) => ({ expr: `${alias}.${ident(k.name)}`, kind: k.kind })));
}

function liveName(live: LiveTable): string {
  return qualified(live.schema, live.table);
}

/** The latest TRUNCATE of the table at or before T ('<=') or the first after it ('>'): one row (cp, seq) or none. */
function truncateProbeSql(q: SqlParams, loc: TrailLocation, live: LiveTable, atUpper: string, cmp: '<=' | '>', columns = 'c.commit_position AS cp, c.seq'): string {
  const dir = cmp === '<=' ? 'DESC' : 'ASC';
  return `SELECT ${columns} FROM ${loc.changes} c
      WHERE c."table" = ${q.p(live.table)} AND c.primary_key IS NULL AND c.committed_at ${cmp} ${q.p(atUpper)}::timestamptz
        AND c.operation = 'TRUNCATE' AND c.schema = ${q.p(live.schema)} AND ${databaseIs(q, loc)}
      ORDER BY c.committed_at ${dir}, c.commit_position ${dir}, c.seq ${dir} LIMIT 1`;
}

/** The same as `(cp, seq)` text, for the preflight of tableAt(). */
function truncateSql(q: SqlParams, loc: TrailLocation, live: LiveTable, atUpper: string, cmp: '<=' | '>'): string {
  return `(SELECT row(z.cp::text, z.seq)::text FROM (${truncateProbeSql(q, loc, live, atUpper, cmp)}) z)`;
}

/**
 * Whether the capture state table exists (it does not before capture first ran: asking the
 * catalog keeps that a typed error instead of a SQL error that would abort the caller's
 * transaction).
 */
function stateExistsSql(q: SqlParams, loc: TrailLocation): string {
  return `to_regclass(${q.p(`${quoteIdent(loc.captureStateName.schema)}.${quoteIdent(loc.captureStateName.table)}`)}) IS NOT NULL`;
}

/**
 * Capture state presence, the TRUNCATEs of the table around T, whether T is at or after the
 * table's latest change (by stream order, through the history index) and whether the trail has
 * its deleted-keys index, in one round trip.
 */
export function preflightSql(loc: TrailLocation, live: LiveTable, atUpper: string): BuiltSql {
  const q = new SqlParams();
  const settled = `(SELECT c.committed_at <= ${q.p(atUpper)}::timestamptz FROM ${loc.changes} c
      WHERE c."table" = ${q.p(live.table)} AND c.schema = ${q.p(live.schema)} AND ${databaseIs(q, loc)}
      ORDER BY c.commit_position DESC, c.seq DESC LIMIT 1)`;
  // The deleted-keys index the 'live' strategy needs (trails created before it existed lack it).
  const deletedIndex = `EXISTS (SELECT 1 FROM pg_index i WHERE i.indrelid = to_regclass(${q.p(loc.changes)}) AND i.indisvalid
      AND pg_get_expr(i.indpred, i.indrelid) = $$(operation = 'DELETE'::text)$$)`;
  return q.build(
    `SELECT ${stateExistsSql(q, loc)} AS state_exists, ${truncateSql(q, loc, live, atUpper, '<=')} AS truncate_before, ${truncateSql(q, loc, live, atUpper, '>')} AS truncate_after,
      ${settled} AS settled, ${deletedIndex} AS deleted_index`,
  );
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
export function recordAtSql(loc: TrailLocation, live: LiveTable, keyValues: string[], atUpper: string): BuiltSql {
  const q = new SqlParams();
  const L = liveName(live);
  const t = `${q.p(atUpper)}::timestamptz`;
  // Scalar subqueries returning whole `changes` rows, each level fenced by OFFSET 0: planned one by
  // one instead of as a join of seven relations, which cost more planning than executing.
  const change = (cmp: '<=' | '>') => {
    const dir = cmp === '<=' ? 'DESC' : 'ASC';
    return `(SELECT c FROM ${loc.changes} c
        WHERE c."table" = ${q.p(live.table)} AND c.primary_key = k.pk AND c.committed_at ${cmp} ${t}
          AND c.schema = ${q.p(live.schema)} AND ${databaseIs(q, loc)}
        ORDER BY c.committed_at ${dir}, c.commit_position ${dir}, c.seq ${dir} LIMIT 1)`;
  };
  const truncate = (cmp: '<=' | '>') => `(${truncateProbeSql(q, loc, live, atUpper, cmp, 'c')})`;
  const pos = (r: string) => `((${r}).commit_position, (${r}).seq)`;
  const pCounts = `(b.p).id IS NOT NULL AND ((b.tb).id IS NULL OR ${pos('b.p')} > ${pos('b.tb')})`;
  const keyArray = `ARRAY[${live.keyColumns.map((k) => `${q.p(k.name)}::text`).join(', ')}]`;
  const noImage = live.hasNonKeyColumns === false ? 'false' : `((b.n).before - ${keyArray}) = '{}'::jsonb`;
  const keyMatch = live.keyColumns.map((k, i) => `t.${ident(k.name)} = ${q.p(keyValues[i])}::${k.type}`).join(' AND ');
  const marker = quoteLiteral(UNCHANGED_TOAST_MARKER);
  const fill = toastFillSql(q, loc, live, 'd.img', 'd.pk', 'd.src_cp', 'd.src_seq');
  return q.build(`SELECT s.state_exists AS _bemi_state_exists, s.pk AS _bemi_key, s.decision AS _bemi_decision,
      CASE WHEN s.toast IS NOT NULL THEN (SELECT string_agg(u, ', ') FROM jsonb_array_elements_text(s.toast -> 'unresolved') u) END AS _bemi_unresolved, r.*
    FROM (
      SELECT d.*, CASE WHEN d.decision = 'image' AND strpos(d.img::text, ${marker}) > 0
        THEN (SELECT jsonb_strip_nulls(jsonb_build_object('fill', f.fill, 'unresolved', to_jsonb(f.unresolved))) FROM (${fill}) f) END AS toast
      FROM (
        SELECT b.state_exists, b.pk,
          CASE
            WHEN ${pCounts} THEN CASE WHEN (b.p).operation = 'DELETE' THEN 'none' ELSE 'image' END
            WHEN (b.tb).id IS NOT NULL THEN 'none'
            WHEN (b.n).id IS NOT NULL AND ((b.ta).id IS NULL OR ${pos('b.n')} < ${pos('b.ta')})
              THEN CASE WHEN (b.n).operation = 'CREATE' THEN 'none' WHEN ${noImage} THEN 'noimage' ELSE 'image' END
            WHEN (b.ta).id IS NOT NULL THEN 'truncated'
            ELSE 'live'
          END AS decision,
          CASE WHEN ${pCounts} THEN (b.p).after ELSE (b.n).before END AS img,
          CASE WHEN ${pCounts} THEN (b.p).commit_position ELSE (b.n).commit_position END AS src_cp,
          CASE WHEN ${pCounts} THEN (b.p).seq ELSE (b.n).seq END AS src_seq
        FROM (
          -- The first change after T matters only when there is none at or before it.
          SELECT k.*, CASE WHEN (k.p).id IS NULL THEN ${change('>')} END AS n
          FROM (
            SELECT k.*, ${change('<=')} AS p, ${truncate('<=')} AS tb, ${truncate('>')} AS ta
            FROM (SELECT ${stateExistsSql(q, loc)} AS state_exists, ${keyTextOfValues(q, live, keyValues)} AS pk) k OFFSET 0
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
function toastFillSql(q: SqlParams, loc: TrailLocation, live: LiveTable, image: string, pk: string, cp: string, seq: string): string {
  const marker = `${quoteLiteral(JSON.stringify(UNCHANGED_TOAST_MARKER))}::jsonb`;
  return `SELECT jsonb_object_agg(m.key, v.value) FILTER (WHERE v.value IS NOT NULL) AS fill,
             array_agg(m.key) FILTER (WHERE v.value IS NULL) AS unresolved
      FROM jsonb_each(${image}) m
      LEFT JOIN LATERAL (
        SELECT c.after -> m.key AS value FROM ${loc.changes} c
        WHERE c."table" = ${q.p(live.table)} AND c.primary_key = ${pk} AND c.schema = ${q.p(live.schema)} AND ${databaseIs(q, loc)}
          AND (c.commit_position, c.seq) < (${cp}, ${seq}) AND c.after -> m.key <> ${marker}
        ORDER BY c.committed_at DESC, c.commit_position DESC, c.seq DESC LIMIT 1
      ) v ON true
      WHERE strpos(${image}::text, ${quoteLiteral(UNCHANGED_TOAST_MARKER)}) > 0 AND m.value = ${marker}`;
}

export function captureStartSql(loc: TrailLocation): BuiltSql {
  const q = new SqlParams();
  return q.build(
    `SELECT ${COMMIT_TS.replace('c.committed_at', 'min(s.started_at)')} AS started
     FROM ${loc.captureState} s WHERE s.database = coalesce(${q.p(loc.database)}::text, current_database())`,
  );
}

/** A position (commit_position, seq) parsed from `row(...)::text`, or null. */
export interface TrailPosition {
  commitPosition: string;
  seq: number;
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
  loc: TrailLocation,
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
  const probe = (bound: string) => lastChangeSql(q, loc, live, t, 'c.operation, c.after, c.commit_position, c.seq', bound);
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
        `SELECT k.l_op, k.l_after, k.l_cp, k.l_seq WHERE k.l_at <= ${t}
        UNION ALL
        (${probe('').replace('WHERE c."table"', `WHERE k.l_at > ${t} AND c."table"`)})`;
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
        WHEN ${pCounts} THEN CASE WHEN p.operation = 'DELETE' THEN NULL ELSE p.after END
        WHEN ${tb.cp} IS NOT NULL THEN NULL
        WHEN ${nCounts} THEN CASE WHEN n.operation = 'CREATE' THEN NULL ELSE n.before END
      END AS data,
      CASE
        WHEN ${pCounts} OR ${tb.cp} IS NOT NULL THEN 'trail'
        WHEN ${nCounts} THEN CASE WHEN n.operation <> 'CREATE' AND ${noImage} THEN 'noimage' ELSE 'trail' END
        WHEN ${ta.cp} IS NOT NULL THEN 'unknown'
        ELSE 'live'
      END AS source
    FROM keys k
    LEFT JOIN LATERAL (${prev}) p(operation, after, commit_position, seq) ON true
    LEFT JOIN LATERAL (
      SELECT c.operation, c.before, c.commit_position, c.seq FROM ${loc.changes} c
      WHERE p.operation IS NULL AND c."table" = ${q.p(live.table)} AND c.primary_key = k.pk AND c.committed_at > ${t}
        AND c.schema = ${q.p(live.schema)} AND ${databaseIs(q, loc)}
      ORDER BY c.committed_at, c.commit_position, c.seq LIMIT 1
    ) n ON true
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
function windowSql(q: SqlParams, loc: TrailLocation, live: LiveTable, atUpper: string): string {
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
 * the one its window is sized by, so both mean the same change.
 */
function lastChangeSql(q: SqlParams, loc: TrailLocation, live: LiveTable, t: string, columns: string, bound = ''): string {
  return `SELECT ${columns} FROM ${loc.changes} c
      WHERE c."table" = ${q.p(live.table)} AND c.primary_key = k.pk AND c.committed_at <= ${t}${bound}
        AND c.schema = ${q.p(live.schema)} AND ${databaseIs(q, loc)}
      ORDER BY c.committed_at DESC, c.commit_position DESC, c.seq DESC LIMIT 1`;
}

/** Keys sampled to size the window (their probes cost about a millisecond together). */
const WINDOW_SAMPLE = 64;

/** The keys tableAt() looks at: the live table's and the DELETEs', or a skip scan over the trail's (see TableAtStrategy). */
function keysSql(q: SqlParams, loc: TrailLocation, live: LiveTable, strategy: TableAtStrategy): string {
  const table = () => q.p(live.table);
  if (strategy === 'live') {
    // UNION (not ALL): a key deleted and created again is both live and in the DELETEs. Sorted
    // like the record index, so consecutive probes read neighbouring index pages (~10% faster).
    return `keys AS (
      SELECT u.pk FROM (
        SELECT ${keyTextOfRow(live, 't')} AS pk FROM ${liveName(live)} t
        UNION
        SELECT d.primary_key FROM ${loc.changes} d
        WHERE d."table" = ${table()} AND d.operation = 'DELETE' AND d.primary_key IS NOT NULL AND d.schema = ${q.p(live.schema)} AND ${databaseIs(q, loc, 'd')}
      ) u ORDER BY u.pk
    )`;
  }
  if (strategy === 'keys') {
    return `keys AS (
      (SELECT c.primary_key AS pk FROM ${loc.changes} c WHERE c."table" = ${table()} AND c.primary_key IS NOT NULL ORDER BY c.primary_key LIMIT 1)
      UNION ALL
      SELECT (SELECT c.primary_key FROM ${loc.changes} c WHERE c."table" = ${table()} AND c.primary_key > k.pk ORDER BY c.primary_key LIMIT 1)
      FROM keys k WHERE k.pk IS NOT NULL
    )`;
  }
  const latest = (after: string) => `SELECT c.primary_key AS pk, c.operation AS l_op, c.after AS l_after, c.commit_position AS l_cp, c.seq AS l_seq, c.committed_at AS l_at
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
  loc: TrailLocation,
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

export interface ChangesFilter {
  table?: { schema: string; table: string };
  keyText?: { live: LiveTable; values: string[] };
  fromLower?: string;
  toUpper?: string;
  operations?: string[];
  context?: string; // JSON text
  changedColumns?: string[];
  after?: TrailPosition;
  order: 'asc' | 'desc';
  limit: number;
}

/** A page of changes in commit order, with keyset pagination on (commit_position, seq). */
export function changesSql(loc: TrailLocation, f: ChangesFilter): BuiltSql {
  const q = new SqlParams();
  const where: string[] = [databaseIs(q, loc)];
  if (f.table) where.push(`c."table" = ${q.p(f.table.table)}`, `c.schema = ${q.p(f.table.schema)}`);
  if (f.keyText) where.push(`c.primary_key = ${keyTextOfValues(q, f.keyText.live, f.keyText.values)}`);
  if (f.fromLower) where.push(`c.committed_at >= ${q.p(f.fromLower)}::timestamptz`);
  if (f.toUpper) where.push(`c.committed_at <= ${q.p(f.toUpper)}::timestamptz`);
  if (f.operations?.length) where.push(`c.operation IN (${f.operations.map((o) => q.p(o)).join(', ')})`);
  if (f.context) where.push(`c.context @> ${q.p(f.context)}::jsonb`);
  if (f.changedColumns?.length) {
    const marker = `${quoteLiteral(JSON.stringify(UNCHANGED_TOAST_MARKER))}::jsonb`;
    where.push(
      `(${f.changedColumns.map((col) => `(c.before -> ${q.p(col)} IS DISTINCT FROM c.after -> ${q.p(col)} AND c.after -> ${q.p(col)} IS DISTINCT FROM ${marker})`).join(' OR ')})`,
    );
  }
  const dir = f.order === 'desc' ? 'DESC' : 'ASC';
  if (f.after) {
    where.push(`(c.commit_position, c.seq) ${dir === 'ASC' ? '>' : '<'} (${q.p(f.after.commitPosition)}::bigint, ${q.p(f.after.seq)}::int)`);
  }
  return q.build(`SELECT ${CHANGE_COLUMNS} FROM ${loc.changes} c WHERE ${where.join(' AND ')}
    ORDER BY c.commit_position ${dir}, c.seq ${dir} LIMIT ${q.p(f.limit)}`);
}

/** Whether the trail holds any change of schema.table (one probe of the record index). */
export function trailHasTableSql(loc: TrailLocation, schema: string, table: string): BuiltSql {
  const q = new SqlParams();
  return q.build(`SELECT 1 AS found FROM ${loc.changes} c WHERE c."table" = ${q.p(table)} AND c.schema = ${q.p(schema)} LIMIT 1`);
}

export function changeByIdSql(loc: TrailLocation, id: string): BuiltSql {
  const q = new SqlParams();
  return q.build(`SELECT ${CHANGE_COLUMNS} FROM ${loc.changes} c WHERE c.id = ${q.p(id)}::uuid`);
}

/** All changes committed in the same transaction, in order. */
export function transactionSql(loc: TrailLocation, commitPosition: string, transactionId: string): BuiltSql {
  const q = new SqlParams();
  return q.build(`SELECT ${CHANGE_COLUMNS} FROM ${loc.changes} c
    WHERE c.commit_position = ${q.p(commitPosition)}::bigint AND c.transaction_id = ${q.p(transactionId)}::bigint
    ORDER BY c.seq`);
}

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

// ---- revert -------------------------------------------------------------------------------

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

// ---- indexes ------------------------------------------------------------------------------

