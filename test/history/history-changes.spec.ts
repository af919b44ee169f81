import { BemiChange } from '../../lib/history/bemi-change.entity';
import { BemiChangeNotFoundError, BemiHistoryArgumentError } from '../../lib/history/history.errors';
import type { ChangesQuery, HistoryChange } from '../../lib/history/history.interfaces';
import { historyEnv, OrderLine, t, Todo, type HistoryEnv } from './history-fixture';

const todo = (id: number, task: string, extra: Record<string, unknown> = {}) => ({ id, task, is_completed: false, ...extra });

describe('BemiHistory.changes(), diff(), transaction() (real PostgreSQL, fixture trail)', () => {
  let env: HistoryEnv;
  let tx: string[];

  beforeAll(async () => {
    env = await historyEnv('history_changes');
    const { trail } = env;
    await trail.startCapture(t(0));
    await trail.commit(t(1), [{ table: 'todo', operation: 'CREATE', key: '26', after: todo(26, 'Sleep'), context: { userId: 187234, endpoint: '/todo' } }]);
    tx = await trail.commit(t(2), [
      { table: 'todo', operation: 'UPDATE', key: '26', before: todo(26, 'Sleep'), after: todo(26, 'Sleep', { is_completed: true }), context: { userId: 187234, endpoint: '/todo/complete' } },
      { table: 'todo', operation: 'CREATE', key: '27', after: todo(27, 'Eat'), context: { userId: 5 } },
      { table: 'order_line', operation: 'CREATE', key: '[1,"A"]', after: { order_id: 1, product_code: 'A', quantity: 2 }, context: { userId: 187234 } },
    ]);
    await trail.commit(t(3), [{ table: 'todo', operation: 'UPDATE', key: '26', before: todo(26, 'Sleep', { is_completed: true }), after: todo(26, 'Nap', { is_completed: true }), context: { userId: 5 } }]);
    await trail.commit(t(4), [{ table: 'todo', operation: 'DELETE', key: '27', before: todo(27, 'Eat'), context: { userId: 187234, endpoint: '/todo/27' } }]);
    // Same table name, another schema / another source database: never part of this app's history.
    await trail.commit(t(4, 10), [{ table: 'todo', schema: 'other', operation: 'CREATE', key: '26', after: todo(26, 'x'), context: { userId: 187234 } }]);
    await trail.commit(t(4, 20), [{ table: 'todo', database: 'elsewhere', operation: 'CREATE', key: '26', after: todo(26, 'x'), context: { userId: 187234 } }]);
  });

  afterAll(() => env.close());

  it("returns a record's trail oldest first, with property names and values typed by the entity", async () => {
    const trail = await env.history.changes(Todo, { primaryKey: 26 });
    expect(trail.map((c) => c.operation)).toEqual(['CREATE', 'UPDATE', 'UPDATE']);
    expect(trail[0]).toMatchObject({ entity: 'Todo', table: 'todo', schema: 'public', primaryKey: '26', before: {}, context: { userId: 187234, endpoint: '/todo' } });
    expect(trail[0].after).toEqual({ id: 26, task: 'Sleep', isCompleted: false });
    expect(trail[1].committedAt).toEqual(new Date(t(2)));
    expect(trail[1].commitTimestamp).toBe(t(2));
    expect(trail.map((c) => c.transactionId)).toEqual([...new Set(trail.map((c) => c.transactionId))]);
    expect(await env.history.changes(Todo, { primaryKey: { id: 26 }, order: 'desc' })).toEqual([...trail].reverse());
  });

  it('keeps numeric digits exactly, for mapped and unmapped tables', async () => {
    const [id] = await env.trail.commit(t(4, 30), [{ table: 'todo', operation: 'CREATE', key: '40', after: '{"id": 40, "task": "n \\"12.50\\" 12345678901234567890", "is_completed": false, "amount": 12345678901234567.50, "views": 7}' }]);
    try {
      const [withAmount] = await env.history.changes(Todo, { primaryKey: 40 });
      expect(withAmount.after).toMatchObject({ id: 40, amount: '12345678901234567.50', views: 7, task: 'n "12.50" 12345678901234567890' });
      expect((await env.history.change(id)).after.amount).toBe('12345678901234567.50');
      // A table that exists only in the trail (here: another schema) can still be read by name.
      const [unmapped] = await env.history.changes('other.todo', {});
      expect(unmapped.after).toEqual({ id: 26, task: 'x', is_completed: false }); // small integers stay numbers
    } finally {
      await env.db.query(`DELETE FROM changes WHERE id = $1`, [id]);
    }
  });

  it('filters by time range (inclusive), operation, context and changed fields', async () => {
    const ops = async (q: ChangesQuery) => (await env.history.changes(Todo, q)).map((c) => `${c.primaryKey}:${c.operation}`);
    expect(await ops({ from: t(2), to: t(3) })).toEqual(['26:UPDATE', '27:CREATE', '26:UPDATE']);
    expect(await ops({ from: new Date(t(3)) })).toEqual(['26:UPDATE', '27:DELETE']);
    expect(await ops({ operation: 'DELETE' })).toEqual(['27:DELETE']);
    expect(await ops({ operation: ['CREATE', 'DELETE'] })).toEqual(['26:CREATE', '27:CREATE', '27:DELETE']);
    expect(await ops({ context: { userId: 187234 } })).toEqual(['26:CREATE', '26:UPDATE', '27:DELETE']);
    expect(await ops({ context: { userId: 187234, endpoint: '/todo/complete' } })).toEqual(['26:UPDATE']);
    expect(await ops({ primaryKey: 26, changedFields: ['isCompleted'] })).toEqual(['26:CREATE', '26:UPDATE']);
    expect(await ops({ operation: 'UPDATE', changedFields: ['task'] })).toEqual(['26:UPDATE']);
  });

  it('finds everything one actor did, across tables, for this database only', async () => {
    const all = await env.history.changes({ context: { userId: 187234 } });
    expect(all.map((c) => `${c.schema}.${c.table}:${c.primaryKey}:${c.operation}`)).toEqual([
      'public.todo:26:CREATE',
      'public.todo:26:UPDATE',
      'public.order_line:[1,"A"]:CREATE',
      'public.todo:27:DELETE',
      'other.todo:26:CREATE', // same database, unmapped schema: column names kept
    ]);
    expect(all[2]).toMatchObject({ entity: 'OrderLine', after: { orderId: 1, productCode: 'A', quantity: 2 } });
    expect(all[4].entity).toBeUndefined();
    expect(all[4].after).toEqual({ id: 26, task: 'x', is_completed: false });
  });

  it('pages with a keyset cursor that stays stable while new changes arrive', async () => {
    const seen: HistoryChange[] = [];
    let page = await env.history.changes({ limit: 2 });
    seen.push(...page);
    // New commits land between page reads: they must appear once, at the end, and shift nothing.
    await env.trail.commit(t(5), [{ table: 'todo', operation: 'CREATE', key: '28', after: todo(28, 'new') }]);
    while (page.length === 2) {
      page = await env.history.changes({ limit: 2, after: page[page.length - 1].cursor });
      seen.push(...page);
      if (seen.length === 4) await env.trail.commit(t(6), [{ table: 'todo', operation: 'CREATE', key: '29', after: todo(29, 'newer') }]);
    }
    const everything = await env.history.changes({ limit: 100 });
    expect(seen.map((c) => c.id)).toEqual(everything.map((c) => c.id));
    expect(new Set(seen.map((c) => c.id)).size).toBe(seen.length);
    expect(everything.slice(-2).map((c) => c.primaryKey)).toEqual(['28', '29']);
    // Backwards, passing the change itself as the cursor.
    const back = await env.history.changes({ order: 'desc', limit: 3, after: everything[everything.length - 1] });
    expect(back.map((c) => c.id)).toEqual(everything.slice(-4, -1).reverse().map((c) => c.id));
  });

  it('diffs a change by property, changed fields only', async () => {
    const [create, complete, rename] = await env.history.changes(Todo, { primaryKey: 26 });
    expect(env.history.diff(complete)).toEqual({ isCompleted: [false, true] });
    expect(env.history.diff(rename)).toEqual({ task: ['Sleep', 'Nap'] });
    expect(env.history.diff(create)).toEqual({ id: [undefined, 26], task: [undefined, 'Sleep'], isCompleted: [undefined, false] });
    // A BemiChange loaded with the user's own em diffs the same way.
    const entity = await env.orm.em.fork().findOneOrFail(BemiChange, { id: complete.id });
    expect(env.history.diff(entity)).toEqual({ isCompleted: [false, true] });
    expect(() => env.history.diff(null as never)).toThrow(/argument "change"/);
  });

  it('returns every change of the same transaction, in order, from a change, a BemiChange or an id', async () => {
    const expected = ['todo:26:UPDATE', 'todo:27:CREATE', 'order_line:[1,"A"]:CREATE'];
    const label = (cs: HistoryChange[]) => cs.map((c) => `${c.table}:${c.primaryKey}:${c.operation}`);
    expect(label(await env.history.transaction(tx[1]))).toEqual(expected);
    const [complete] = await env.history.changes(Todo, { primaryKey: 26, operation: 'UPDATE', limit: 1 });
    expect(label(await env.history.transaction(complete))).toEqual(expected);
    expect((await env.history.transaction(complete)).map((c) => c.seq)).toEqual([0, 1, 2]);
    await expect(env.history.transaction('00000000-0000-4000-8000-000000000000')).rejects.toThrow(BemiChangeNotFoundError);
  });

  it('maps the changes table as the BemiChange entity for your own queries', async () => {
    const em = env.orm.em.fork();
    const rows = await em.find(BemiChange, { table: 'todo', primaryKey: '26', schema: 'public', database: env.db.name }, { orderBy: { commitPosition: 'asc', seq: 'asc' } });
    expect(rows.map((r) => r.operation)).toEqual(['CREATE', 'UPDATE', 'UPDATE']);
    expect(rows[0]).toBeInstanceOf(BemiChange);
    expect(rows[0].after).toEqual({ id: 26, task: 'Sleep', is_completed: false });
    expect(typeof rows[0].commitPosition).toBe('string');
    expect(rows[0].committedAt).toEqual(new Date(t(1)));
    const n = await em.count(BemiChange, { context: { userId: 187234 } });
    expect(n).toBe(6); // includes the other schema and the other database
  });

  it('names the argument on bad input', async () => {
    const h = env.history;
    await expect(h.changes(Todo, { from: t(3), to: t(2) })).rejects.toThrow(/argument "to" \(.*\) is before "from"/);
    await expect(h.changes(Todo, { from: 'yesterday' })).rejects.toThrow(/argument "from" is not an ISO 8601/);
    await expect(h.changes(Todo, { operation: 'INSERT' as never })).rejects.toThrow(/argument "operation" must be one of/);
    await expect(h.changes(Todo, { limit: 0 })).rejects.toThrow(/argument "limit"/);
    await expect(h.changes(Todo, { after: 'garbage' })).rejects.toThrow(/argument "after" is not a cursor/);
    await expect(h.changes(Todo, { changedFields: ['nope'] })).rejects.toThrow(/argument "changedFields" names "nope"/);
    await expect(h.changes(Todo, { primaryKey: 'x' })).rejects.toThrow(/argument "primaryKey" does not fit/);
    await expect(h.changes({ primaryKey: 1 })).rejects.toThrow(/argument "primaryKey" needs an entity/);
    await expect(h.changes(Todo, { primarykey: 1 } as never)).rejects.toThrow(/argument "query" has an unknown option "primarykey"/);
    await expect(h.changes(OrderLine, { primaryKey: [1] })).rejects.toThrow(BemiHistoryArgumentError);
    await expect(h.changes('nowhere')).rejects.toThrow(/argument "entity" is not a known entity or table: nowhere/);
  });
});

