import type { ChangesQuery } from '../../lib/history/history.interfaces';
import { historyEnv, Todo, type HistoryEnv } from './history-fixture';

const BASE = Date.UTC(2026, 2, 1);
const N = 3000;

/**
 * changes(target, { from, to }) bounds commit_position from the time range (history-reader.sql.ts,
 * timeBoundsSql). The bound must never drop a change: this trail has commit order and commit time
 * disagreeing both ways (a clock step back, a burst committed "in the future"), runs of equal
 * timestamps, another table interleaved, and a heap not in commit order, so a bound taken from the
 * time order alone, or a block range wrongly skipped, loses rows the plain statement returns.
 */
describe('BemiHistory.changes() over a time range (real PostgreSQL)', () => {
  let env: HistoryEnv;
  const statements: string[] = [];

  beforeAll(async () => {
    env = await historyEnv('history_time_range');
    await env.trail.startCapture(new Date(BASE - 3_600_000).toISOString());
    // n = commit number; t in ms after BASE. Padding spreads the rows over many heap pages (and BRIN ranges).
    await env.db.query(`
      INSERT INTO changes (primary_key, before, after, context, database, schema, "table", operation, committed_at, queued_at, transaction_id, position, commit_position, seq)
      SELECT (n % 50)::text, '{}', jsonb_build_object('id', n % 50, 'task', 'v' || n, 'is_completed', false, 'pad', repeat('x', 1200)), '{}',
             current_database(), CASE WHEN n % 997 = 0 THEN 'other' ELSE 'public' END, CASE WHEN n % 3 = 0 THEN 'order_line' ELSE 'todo' END,
             CASE WHEN n % 50 = n / 50 % 50 THEN 'CREATE' ELSE 'UPDATE' END,
             to_timestamp(${BASE / 1000}) + ms * interval '1 millisecond', to_timestamp(${BASE / 1000}) + ms * interval '1 millisecond',
             n, n * 100, n * 100 + 50, s
      FROM generate_series(0, ${N - 1}) n, generate_series(0, 1) s,
           LATERAL (SELECT CASE
             WHEN n BETWEEN 1000 AND 1099 THEN n - 600    -- clock stepped back: later commits, earlier times
             WHEN n BETWEEN 2000 AND 2049 THEN n + 700    -- a burst stamped ahead of the commits after it
             WHEN n BETWEEN 1500 AND 1599 THEN 1500       -- one timestamp for a hundred commits
             ELSE n END AS ms) x
      ORDER BY (n * 7919) % 13, n`);
    await env.db.query(`VACUUM ANALYZE changes`);
    // BRIN summaries as autosummarize would leave them (unsummarized ranges are always read).
    await env.db.query(`SELECT brin_summarize_new_values('_bemi_changes_time_position')`);
    const em = env.orm.em as unknown as { execute: (sql: string, params?: unknown[]) => Promise<unknown> };
    const execute = em.execute.bind(em);
    jest.spyOn(em, 'execute').mockImplementation((sql: string, params?: unknown[]) => {
      statements.push(sql);
      return execute(sql, params);
    });
  });

  afterAll(() => env.close());

  /** What the unbounded statement returns: ids of todo's changes in the range, in commit order. */
  async function expected(fromMs: number | undefined, toMs: number | undefined, order: 'asc' | 'desc', limit: number): Promise<string[]> {
    const where = [`"table" = 'todo'`, `schema = 'public'`, `database = current_database()`];
    if (fromMs !== undefined) where.push(`committed_at >= '${new Date(BASE + fromMs).toISOString()}'`);
    if (toMs !== undefined) where.push(`committed_at < '${new Date(BASE + toMs).toISOString()}'::timestamptz + interval '1 ms'`);
    const rows = await env.db.query<{ id: string }>(
      `SELECT id::text FROM changes WHERE ${where.join(' AND ')} ORDER BY commit_position ${order}, seq ${order} LIMIT ${limit}`,
    );
    return rows.map((r) => r.id);
  }

  const moments = [0, 1, 399, 400, 450, 499, 500, 999, 1000, 1050, 1099, 1100, 1499, 1500, 1501, 1600, 1999, 2000, 2049, 2050, 2699, 2700, 2749, 2750, 2999, 3500];

  it('returns exactly the rows and order of the plain statement, from any moment, both orders', async () => {
    statements.length = 0;
    for (const from of moments) {
      for (const order of ['asc', 'desc'] as const) {
        for (const limit of [1, 7, 60, 5000]) {
          const got = await env.history.changes(Todo, { from: new Date(BASE + from), order, limit });
          expect({ from, order, limit, ids: got.map((c) => c.id) }).toEqual({ from, order, limit, ids: await expected(from, undefined, order, limit) });
        }
      }
    }
    // The bounded statement ran (not the plain one): a wrong bound would have shown above.
    expect(statements.filter((s) => s.includes('_bemi_from_bound')).length).toBe(moments.length * 8);
  });

  it('does the same for { to } and { from, to }, including empty and one-timestamp ranges', async () => {
    statements.length = 0;
    const ranges: Array<[number | undefined, number]> = [[undefined, 0], [undefined, 450], [undefined, 1500], [undefined, 2720], [0, 0], [1500, 1500], [400, 499], [1000, 1099],
      [1050, 1450], [1999, 2751], [2049, 2700], [2000, 2000], [2600, 2760], [1100, 1099], [2999, 3000], [3100, 3200]];
    for (const [from, to] of ranges) {
      for (const order of ['asc', 'desc'] as const) {
        for (const limit of [3, 5000]) {
          const query: ChangesQuery = { to: new Date(BASE + to), order, limit };
          if (from !== undefined) query.from = new Date(BASE + from);
          if (from !== undefined && to < from) {
            await expect(env.history.changes(Todo, query)).rejects.toThrow(/before "from"/);
            continue;
          }
          const got = await env.history.changes(Todo, query);
          expect({ from, to, order, limit, ids: got.map((c) => c.id) }).toEqual({ from, to, order, limit, ids: await expected(from, to, order, limit) });
        }
      }
    }
    expect(statements.some((s) => s.includes('_bemi_to_bound'))).toBe(true);
  });

  it('pages through a range with the cursor without losing or repeating a change', async () => {
    for (const order of ['asc', 'desc'] as const) {
      const seen: string[] = [];
      let after: string | undefined;
      for (;;) {
        const page = await env.history.changes(Todo, { from: new Date(BASE + 900), to: new Date(BASE + 2100), order, limit: 97, ...(after ? { after } : {}) });
        seen.push(...page.map((c) => c.id));
        if (page.length < 97) break;
        after = page[page.length - 1].cursor;
      }
      expect(seen).toEqual(await expected(900, 2100, order, 100_000));
    }
  });

  it('keeps the other filters, and lists all tables the same way when no table is named', async () => {
    const updates = await env.history.changes(Todo, { from: new Date(BASE + 1040), operation: 'UPDATE', limit: 20 });
    const rows = await env.db.query<{ id: string }>(
      `SELECT id::text FROM changes WHERE "table" = 'todo' AND schema = 'public' AND operation = 'UPDATE' AND committed_at >= $1 ORDER BY commit_position, seq LIMIT 20`,
      [new Date(BASE + 1040).toISOString()],
    );
    expect(updates.map((c) => c.id)).toEqual(rows.map((r) => r.id));
    const all = await env.history.changes({ from: new Date(BASE + 1040), to: new Date(BASE + 2720), order: 'desc', limit: 40 });
    const allRows = await env.db.query<{ id: string }>(
      `SELECT id::text FROM changes WHERE database = current_database() AND committed_at >= $1 AND committed_at < $2::timestamptz + interval '1 ms' ORDER BY commit_position DESC, seq DESC LIMIT 40`,
      [new Date(BASE + 1040).toISOString(), new Date(BASE + 2720).toISOString()],
    );
    expect(all.map((c) => c.id)).toEqual(allRows.map((r) => r.id));
  });

  it('falls back to the plain statement on a trail without the index', async () => {
    const other = await historyEnv('history_time_range_old', {}, 'DROP INDEX _bemi_changes_time_position');
    try {
      await other.trail.startCapture(new Date(BASE - 3_600_000).toISOString());
      await other.trail.commit(new Date(BASE + 10).toISOString(), [{ table: 'todo', operation: 'CREATE', key: '1', after: { id: 1, task: 'a', is_completed: false } }]);
      await other.trail.commit(new Date(BASE + 5).toISOString(), [{ table: 'todo', operation: 'UPDATE', key: '1', before: { id: 1, task: 'a', is_completed: false }, after: { id: 1, task: 'b', is_completed: false } }]);
      const got = await other.history.changes(Todo, { from: new Date(BASE + 5) });
      expect(got.map((c) => c.operation)).toEqual(['CREATE', 'UPDATE']);
    } finally {
      await other.close();
    }
  });
});
