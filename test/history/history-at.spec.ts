import { wrap } from '@mikro-orm/core';
import {
  BemiBeforeCaptureError,
  BemiHistoryArgumentError,
  BemiHistoryUnavailableError,
  BemiUnknownEntityError,
} from '../../lib/history/history.errors';
import { historyEnv, OrderLine, t, Todo, type HistoryEnv } from './history-fixture';

/** One microsecond before `iso` (which must have 6 fraction digits). */
function justBefore(iso: string): string {
  const micros = BigInt(Date.parse(iso)) * 1000n + BigInt(iso.slice(23, 26)) - 1n;
  const ms = micros / 1000n;
  return new Date(Number(ms)).toISOString().slice(0, -1) + String(micros % 1000n).padStart(3, '0') + 'Z';
}

const todo = (id: number, task: string, extra: Record<string, unknown> = {}) => ({ id, task, is_completed: false, due_at: null, amount: null, views: null, ...extra });

describe('BemiHistory.at() and tableAt() (real PostgreSQL, fixture trail)', () => {
  let env: HistoryEnv;
  const ids: Record<string, string[]> = {};

  beforeAll(async () => {
    env = await historyEnv('history_at');
    const { db, trail } = env;
    // Rows that existed before capture started: 100 is never touched, 101 is updated later.
    await db.query(`INSERT INTO todo (id, task) VALUES (100, 'untouched'), (101, 'old task')`);
    await trail.startCapture(t(0));
    ids.create1 = await trail.commit(t(1), [{ table: 'todo', operation: 'CREATE', key: '1', after: todo(1, 'Sleep', { due_at: '2024-03-05 08:00:00+00', amount: '12.50', views: 3 }) }], { apply: true });
    ids.update1 = await trail.commit(t(2), [
      { table: 'todo', operation: 'UPDATE', key: '1', before: todo(1, 'Sleep', { due_at: '2024-03-05 08:00:00+00', amount: '12.50', views: 3 }), after: todo(1, 'Sleep well', { due_at: '2024-03-05 08:00:00+00', amount: '12.50', views: 4 }) },
      { table: 'todo', operation: 'CREATE', key: '2', after: todo(2, 'Two') },
    ], { apply: true });
    // Values as pgoutput text may give them: strings for numbers and booleans.
    ids.complete1 = await trail.commit(t(3), [
      { table: 'todo', operation: 'UPDATE', key: '1', before: todo(1, 'Sleep well', { due_at: '2024-03-05 08:00:00+00', amount: '12.50', views: 4 }), after: todo(1, 'Sleep well', { is_completed: 't', due_at: '2024-03-05 08:00:00+00', amount: '12.50', views: '5' }) },
      { table: 'todo', operation: 'DELETE', key: '2', before: todo(2, 'Two') },
      { table: 'todo', operation: 'CREATE', key: '3', after: todo(3, 'Three') },
    ], { apply: true });
    ids.delete1 = await trail.commit(t(4), [{ table: 'todo', operation: 'DELETE', key: '1', before: todo(1, 'Sleep well', { is_completed: true, views: 5 }) }], { apply: true });
    ids.update101 = await trail.commit(t(5), [{ table: 'todo', operation: 'UPDATE', key: '101', before: todo(101, 'old task'), after: todo(101, 'new task') }], { apply: true });
    ids.recreate1 = await trail.commit(t(6), [{ table: 'todo', operation: 'CREATE', key: '1', after: todo(1, 'Wake up') }], { apply: true });
    // A commit inside a millisecond: 10:07:00.001500
    ids.micro = await trail.commit(t(7, 1500), [{ table: 'todo', operation: 'UPDATE', key: '3', before: todo(3, 'Three'), after: todo(3, 'Three!') }], { apply: true });
    // A change of another schema's "todo" must never leak in.
    await trail.commit(t(8), [{ table: 'todo', schema: 'other', operation: 'CREATE', key: '100', after: todo(100, 'not ours') }]);
    // Composite keys: JSON array of the key values, encoded as in `after` (the capture's format).
    await trail.commit(t(2), [{ table: 'order_line', operation: 'CREATE', key: '[1,"A"]', after: { order_id: 1, product_code: 'A', quantity: 2 } }], { apply: true });
    await trail.commit(t(3), [{ table: 'order_line', operation: 'UPDATE', key: '[1,"A"]', before: { order_id: 1, product_code: 'A', quantity: 2 }, after: { order_id: 1, product_code: 'A', quantity: 7 } }], { apply: true });
  });

  afterAll(() => env.close());

  const taskAt = async (id: number, at: Date | string) => ((await env.history.at(Todo, id, at)) as Todo | null)?.task ?? null;

  it('follows a record through create, updates, delete and re-create with the same key', async () => {
    expect(await taskAt(1, t(0, 30_000_000))).toBeNull(); // before its CREATE
    expect(await taskAt(1, t(1))).toBe('Sleep'); // exactly at the commit: inclusive
    expect(await taskAt(1, justBefore(t(1)))).toBeNull(); // one microsecond earlier
    expect(await taskAt(1, t(2, 30_000_000))).toBe('Sleep well'); // between commits
    expect(await taskAt(1, justBefore(t(4)))).toBe('Sleep well');
    expect(await taskAt(1, t(4))).toBeNull(); // deleted
    expect(await taskAt(1, t(5, 59_000_000))).toBeNull();
    expect(await taskAt(1, t(6))).toBe('Wake up'); // re-created
  });

  it('returns entity instances with property names and JS types, whatever text the capture stored', async () => {
    const at3 = (await env.history.at(Todo, 1, t(3)))!;
    expect(at3).toBeInstanceOf(Todo);
    expect(at3).toMatchObject({ id: 1, task: 'Sleep well', isCompleted: true, amount: '12.50', views: 5 });
    expect(at3.dueAt).toEqual(new Date('2024-03-05T08:00:00Z'));
    expect(Object.keys(at3)).not.toContain('is_completed');
  });

  it('does not manage the instance it returns, nor touch one the EntityManager already manages', async () => {
    const em = env.orm.em.fork();
    const managed = await em.findOneOrFail(Todo, 1);
    const past = (await env.history.at(Todo, 1, t(1)))!;
    expect(past).not.toBe(managed);
    expect(managed.task).toBe('Wake up');
    expect(em.getUnitOfWork().getIdentityMap().values()).not.toContain(past);
    expect(wrap(past, true).__em).toBeUndefined();
  });

  it('uses the before image of the first change for rows that existed before capture, and the live row for untouched ones', async () => {
    expect(await taskAt(101, t(1))).toBe('old task');
    expect(await taskAt(101, justBefore(t(5)))).toBe('old task');
    expect(await taskAt(101, t(5))).toBe('new task');
    expect(await taskAt(100, t(1))).toBe('untouched');
    expect(await taskAt(999, t(1))).toBeNull();
  });

  it('treats a Date as its whole millisecond, and strings with microseconds exactly', async () => {
    // The commit is at .001500; the Date of that millisecond includes it, the string .001499 does not.
    expect(await taskAt(3, new Date(t(7, 1000)))).toBe('Three!');
    expect(await taskAt(3, t(7, 1499))).toBe('Three');
    expect(await taskAt(3, t(7, 1500))).toBe('Three!');
    const [change] = await env.history.changes(Todo, { primaryKey: 3, operation: 'UPDATE' });
    expect(change.commitTimestamp).toBe(t(7, 1500));
    expect(await taskAt(3, change.committedAt)).toBe('Three!');
    expect(await taskAt(3, change.commitTimestamp)).toBe('Three!');
  });

  it('reads offsets in strings as the same instant, and refuses a time without one', async () => {
    // 10:03:00Z is 15:33:00+05:30 and 05:03:00-05:00.
    expect(await taskAt(1, '2024-03-01T15:33:00+05:30')).toBe('Sleep well');
    expect((await env.history.at(Todo, 1, '2024-03-01T05:03:00-05:00'))!.isCompleted).toBe(true);
    expect((await env.history.at(Todo, 1, '2024-03-01T05:02:59.999999-0500'))!.isCompleted).toBe(false);
    await expect(env.history.at(Todo, 1, '2024-03-01T10:03:00')).rejects.toThrow(BemiHistoryArgumentError);
    await expect(env.history.at(Todo, 1, '2024-03-01T10:03:00')).rejects.toThrow(/argument "at".*time zone offset/);
  });

  it('accepts composite keys as objects or arrays', async () => {
    const line = (await env.history.at(OrderLine, { orderId: 1, productCode: 'A' }, t(2)))!;
    expect(line).toBeInstanceOf(OrderLine);
    expect(line.quantity).toBe(2);
    expect(((await env.history.at(OrderLine, [1, 'A'], t(3))) as OrderLine).quantity).toBe(7);
    expect(await env.history.at(OrderLine, { orderId: 1, productCode: 'A' }, t(1))).toBeNull();
  });

  it('matches composite keys of live rows to the trail exactly as the capture writes them', async () => {
    // Pre-capture rows, one with characters JSON must escape; only (1,'A') has a trail.
    await env.db.query(`INSERT INTO order_line VALUES (2, 'B', 1), (3, 'x"y\\z', 4)`);
    await env.trail.commit(t(8, 5), [{ table: 'order_line', operation: 'UPDATE', key: JSON.stringify([3, 'x"y\\z']), before: { order_id: 3, product_code: 'x"y\\z', quantity: 4 }, after: { order_id: 3, product_code: 'x"y\\z', quantity: 5 } }], { apply: true });
    const lines = (await env.history.tableAt(OrderLine, t(3))) as OrderLine[];
    expect(lines.map((l) => `${l.orderId}/${l.productCode}:${l.quantity}`)).toEqual(['1/A:7', '2/B:1', '3/x"y\\z:4']);
    const now = (await env.history.tableAt(OrderLine, t(9))) as OrderLine[];
    expect(now.map((l) => l.quantity)).toEqual([7, 1, 5]);
  });

  it('rebuilds a whole table at a moment, deletes included, from trail and live rows', async () => {
    const ids = async (at: string) => ((await env.history.tableAt(Todo, at)) as Todo[]).map((x) => `${x.id}:${x.task}`);
    expect(await ids(t(0, 30_000_000))).toEqual(['100:untouched', '101:old task']);
    expect(await ids(t(2))).toEqual(['1:Sleep well', '2:Two', '100:untouched', '101:old task']);
    expect(await ids(t(3))).toEqual(['1:Sleep well', '3:Three', '100:untouched', '101:old task']);
    expect(await ids(t(4))).toEqual(['3:Three', '100:untouched', '101:old task']);
    expect(await ids(t(9))).toEqual(['1:Wake up', '3:Three!', '100:untouched', '101:new task']);
    // At "now" the rebuilt table equals the live table.
    const live = await env.db.query(`SELECT id, task FROM todo ORDER BY id`);
    expect(await ids(t(9))).toEqual(live.map((r) => `${r.id}:${r.task}`));
  });

  it('filters and limits tableAt() by property', async () => {
    const done = (await env.history.tableAt(Todo, t(3), { where: { isCompleted: true } })) as Todo[];
    expect(done.map((x) => x.id)).toEqual([1]);
    const some = (await env.history.tableAt(Todo, t(3), { where: { id: [3, 101, 5] } })) as Todo[];
    expect(some.map((x) => x.id)).toEqual([3, 101]);
    expect(((await env.history.tableAt(Todo, t(3), { limit: 2 })) as Todo[]).map((x) => x.id)).toEqual([1, 3]);
    await expect(env.history.tableAt(Todo, t(3), { where: { nope: 1 } as never })).rejects.toThrow(/argument "options.where".*"nope"/);
  });

  it('works on a table name string for unmapped tables, returning rows keyed by column', async () => {
    await env.db.query(`INSERT INTO unmapped_note VALUES ('6f1c7a2e-0000-4000-8000-000000000001', 'note')`);
    const rows = await env.history.tableAt('unmapped_note', t(1));
    expect(rows).toEqual([{ id: '6f1c7a2e-0000-4000-8000-000000000001', body: 'note' }]);
    // uuid keys match whatever case the caller uses
    expect(await env.history.at('public.unmapped_note', '6F1C7A2E-0000-4000-8000-000000000001', t(1))).toEqual({ id: '6f1c7a2e-0000-4000-8000-000000000001', body: 'note' });
    expect(((await env.history.at('todo', 1, t(1))) as Todo).task).toBe('Sleep'); // table name of a mapped entity
  });

  it('refuses moments before capture started, naming the argument', async () => {
    const err = await env.history.at(Todo, 1, justBefore(t(0))).catch((e) => e);
    expect(err).toBeInstanceOf(BemiBeforeCaptureError);
    expect(err.argument).toBe('at');
    expect(err.message).toMatch(/argument "at".*before change capture started \(2024-03-01T10:00:00\.000000Z\)/);
    await expect(env.history.tableAt(Todo, '2024-02-01T00:00:00Z')).rejects.toThrow(BemiBeforeCaptureError);
    expect(await taskAt(100, t(0))).toBe('untouched'); // exactly at the start is fine
  });

  it('names the argument on bad input', async () => {
    await expect(env.history.at(class Nope {}, 1, t(1))).rejects.toThrow(BemiUnknownEntityError);
    await expect(env.history.at('no_such_table', 1, t(1))).rejects.toThrow(/argument "entity".*no_such_table/);
    await expect(env.history.at(Todo, { id: 1, other: 2 } as never, t(1))).resolves.toBeTruthy(); // extra fields are ignored
    await expect(env.history.at(Todo, 'abc', t(1))).rejects.toThrow(/argument "primaryKey" does not fit/);
    await expect(env.history.at(OrderLine, 1, t(1))).rejects.toThrow(/argument "primaryKey".*composite key \(orderId, productCode\)/);
    await expect(env.history.at(OrderLine, { orderId: 1 }, t(1))).rejects.toThrow(/argument "primaryKey" lacks "productCode"/);
    await expect(env.history.at(Todo, null, t(1))).rejects.toThrow(/argument "primaryKey" is null/);
    await expect(env.history.at(Todo, 1, new Date('nope'))).rejects.toThrow(/argument "at" is an invalid Date/);
    await expect(env.history.at(Todo, 1, '2024-02-30T10:00:00Z')).rejects.toThrow(/argument "at" is not a valid date/);
    await expect(env.history.tableAt(Todo, 12345 as never)).rejects.toThrow(/argument "at" must be a Date/);
    await expect(env.history.tableAt(Todo, t(1), { limit: 0 })).rejects.toThrow(/argument "options.limit"/);
  });
});

describe('BemiHistory time travel over unchanged TOAST values', () => {
  let env: HistoryEnv;
  const MARKER = '__bemi_unchanged_toast__'; // what the capture writes for a value the WAL did not carry
  const long = 'x'.repeat(5000);

  beforeAll(async () => {
    env = await historyEnv('history_toast');
    await env.db.query(`INSERT INTO todo (id, task) VALUES (61, 'pre-capture ${'y'.repeat(100)}')`);
    await env.trail.startCapture(t(0));
    await env.trail.commit(t(1), [{ table: 'todo', operation: 'CREATE', key: '60', after: todo(60, long) }], { apply: true });
    await env.trail.commit(t(2), [{ table: 'todo', operation: 'UPDATE', key: '60', after: todo(60, MARKER, { views: 1 }) }]);
    await env.trail.commit(t(3), [{ table: 'todo', operation: 'UPDATE', key: '60', after: todo(60, MARKER, { views: 2 }) }]);
    await env.trail.commit(t(4), [{ table: 'todo', operation: 'UPDATE', key: '61', after: todo(61, MARKER, { views: 1 }) }]);
    await env.db.query(`UPDATE todo SET views = 2 WHERE id = 60; UPDATE todo SET views = 1 WHERE id = 61`);
  });
  afterAll(() => env.close());

  it('fills the value from the latest earlier image of the record', async () => {
    const at3 = (await env.history.at(Todo, 60, t(3))) as Todo;
    expect(at3.task).toBe(long);
    expect(at3.views).toBe(2);
    const [, update] = await env.history.changes(Todo, { primaryKey: 60 });
    // Without a before image every carried column counts as changed, but never the marked one.
    expect(env.history.diff(update)).toMatchObject({ views: [undefined, 1] });
    expect(env.history.diff(update)).not.toHaveProperty('task');
    expect((await env.history.changes(Todo, { primaryKey: 60, changedFields: ['task'] })).map((c) => c.operation)).toEqual(['CREATE']);
  });

  it('refuses rather than return the marker when no image holds the value', async () => {
    await expect(env.history.at(Todo, 61, t(4))).rejects.toThrow(/does not hold the value of task for record\(s\) 61.*REPLICA IDENTITY FULL/);
    await expect(env.history.tableAt(Todo, t(5))).rejects.toThrow(BemiHistoryUnavailableError);
    expect(((await env.history.tableAt(Todo, t(3), { where: { id: 60 } })) as Todo[]).map((x) => x.task.length)).toEqual([5000]);
  });

  it('refuses a state that only an empty before image could tell (no REPLICA IDENTITY FULL)', async () => {
    // 61 existed before capture; its first captured change is an UPDATE whose before is {}.
    await expect(env.history.at(Todo, 61, t(3))).rejects.toThrow(/record\(s\) 61 of Todo \(public.todo\) had no change at or before .* no before image/);
    await expect(env.history.tableAt(Todo, t(3))).rejects.toThrow(BemiHistoryUnavailableError);
  });
});

describe('BemiHistory time travel around TRUNCATE and missing capture state', () => {
  let env: HistoryEnv;

  beforeAll(async () => {
    env = await historyEnv('history_truncate');
  });
  afterAll(() => env.close());

  it('refuses when capture never started', async () => {
    const err = await env.history.at(Todo, 1, t(1)).catch((e) => e);
    expect(err).toBeInstanceOf(BemiBeforeCaptureError);
    expect(err.message).toMatch(/capture has not started/);
  });

  it('knows a TRUNCATE removes every row, and says when a later one erased what it would need', async () => {
    const { db, trail, history } = env;
    await db.query(`INSERT INTO todo (id, task) VALUES (50, 'pre-capture')`);
    await trail.startCapture(t(0));
    await trail.commit(t(1), [{ table: 'todo', operation: 'CREATE', key: '1', after: todo(1, 'one') }], { apply: true });
    await trail.commit(t(2), [{ table: 'todo', operation: 'UPDATE', key: '50', before: todo(50, 'pre-capture'), after: todo(50, 'changed') }], { apply: true });
    await trail.commit(t(3), [{ table: 'todo', operation: 'TRUNCATE', key: null }], { apply: true });
    await trail.commit(t(4), [{ table: 'todo', operation: 'CREATE', key: '7', after: todo(7, 'after truncate') }], { apply: true });

    expect(((await history.at(Todo, 1, t(2))) as Todo).task).toBe('one');
    expect(await history.at(Todo, 1, t(3))).toBeNull();
    expect(await history.at(Todo, 50, t(3, 1))).toBeNull();
    expect(((await history.at(Todo, 50, t(1))) as Todo).task).toBe('pre-capture');
    expect(((await history.tableAt(Todo, t(4))) as Todo[]).map((x) => x.id)).toEqual([7]);
    // Before the TRUNCATE, rows untouched since capture started may have existed and left no image.
    await expect(history.tableAt(Todo, t(2))).rejects.toThrow(BemiHistoryUnavailableError);
    await expect(history.at(Todo, 99, t(2))).rejects.toThrow(BemiHistoryUnavailableError);
  });
});
