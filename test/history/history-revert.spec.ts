import { bemiMigrationSql, installBemiQueryHook } from '../../lib';
import { BemiContextStore } from '../../lib/context/bemi-context.store';
import { BemiHistory } from '../../lib/history/bemi-history';
import { BemiRevertConflictError, BemiRevertUnsupportedError } from '../../lib/history/history.errors';
import { WalReader } from '../support/wal-reader';
import { historyEnv, t, type HistoryEnv } from './history-fixture';

const row = (id: number, task: string, extra: Record<string, unknown> = {}) => ({ id, task, is_completed: false, due_at: null, amount: null, views: null, ...extra });

describe('BemiHistory.revert() and revertTransaction() (real PostgreSQL)', () => {
  let env: HistoryEnv;
  let history: BemiHistory;
  let store: BemiContextStore;
  let wal: WalReader;
  let uninstall: () => void;

  const live = async (id: number) => (await env.db.query(`SELECT id, task, is_completed, amount::text AS amount, views FROM todo WHERE id = $1`, [id]))[0] ?? null;

  beforeAll(async () => {
    env = await historyEnv('history_revert');
    await env.db.query(bemiMigrationSql().up);
    store = new BemiContextStore();
    uninstall = installBemiQueryHook(env.orm, { store });
    history = BemiHistory.create(env.orm, { store });
    await env.trail.startCapture(t(0));
    wal = await WalReader.create(env.db.url);
  });

  afterAll(async () => {
    uninstall();
    await wal.close();
    await env.close();
  });

  beforeEach(async () => {
    await wal.read(); // drop what the fixture wrote
  });

  it('reverts an UPDATE, changing only what it changed, audited with revertOf merged into the current context', async () => {
    await env.trail.commit(t(1), [{ table: 'todo', operation: 'CREATE', key: '1', after: row(1, 'a', { amount: '1.50' }) }], { apply: true });
    const [update] = await env.trail.commit(t(2), [{ table: 'todo', operation: 'UPDATE', key: '1', before: row(1, 'a', { amount: '1.50' }), after: row(1, 'b', { amount: '1.50', views: 2 }) }], { apply: true });
    await wal.read();
    await store.run({ userId: 9, endpoint: '/admin/undo' }, () => history.revert(update));
    expect(await live(1)).toEqual({ id: 1, task: 'a', is_completed: false, amount: '1.50', views: null });
    const changes = await wal.readChanges();
    expect(changes.map((c) => [c.operation, c.table, c.context])).toEqual([['UPDATE', 'public.todo', { userId: 9, endpoint: '/admin/undo', revertOf: update }]]);
  });

  it('reverts a DELETE by restoring the whole row, and a CREATE by deleting it', async () => {
    await env.trail.commit(t(3), [{ table: 'todo', operation: 'CREATE', key: '2', after: row(2, 'two', { is_completed: true, amount: '9.99', views: 7 }) }], { apply: true });
    const [del] = await env.trail.commit(t(4), [{ table: 'todo', operation: 'DELETE', key: '2', before: row(2, 'two', { is_completed: true, amount: '9.99', views: 7 }) }], { apply: true });
    expect(await live(2)).toBeNull();
    await history.revert(del);
    expect(await live(2)).toEqual({ id: 2, task: 'two', is_completed: true, amount: '9.99', views: 7 });

    const [create] = await env.trail.commit(t(5), [{ table: 'todo', operation: 'CREATE', key: '3', after: row(3, 'three') }], { apply: true });
    await wal.read();
    await history.revert(create);
    expect(await live(3)).toBeNull();
    const changes = await wal.readChanges();
    expect(changes.map((c) => [c.operation, c.context])).toEqual([['DELETE', { revertOf: create }]]);
  });

  it('refuses, changing nothing, when the row changed since the change', async () => {
    const [, update] = await env.trail.commit(t(6), [
      { table: 'todo', operation: 'CREATE', key: '4', after: row(4, 'x') },
      { table: 'todo', operation: 'UPDATE', key: '4', before: row(4, 'x'), after: row(4, 'y') },
    ], { apply: true });
    await env.db.query(`UPDATE todo SET task = 'z' WHERE id = 4`); // a later write the revert would clobber
    const err = await history.revert(update).catch((e) => e);
    expect(err).toBeInstanceOf(BemiRevertConflictError);
    expect(err.message).toMatch(/changed since/);
    expect(err.changeId).toBe(update);
    expect((await live(4)).task).toBe('z');

    // CREATE whose row was edited or is gone; DELETE whose key was taken again.
    const [create] = await env.trail.commit(t(7), [{ table: 'todo', operation: 'CREATE', key: '5', after: row(5, 'five') }], { apply: true });
    await env.db.query(`UPDATE todo SET views = 1 WHERE id = 5`);
    await expect(history.revert(create)).rejects.toThrow(/changed since/);
    await env.db.query(`DELETE FROM todo WHERE id = 5`);
    await expect(history.revert(create)).rejects.toThrow(/no longer exists/);
    const [del] = await env.trail.commit(t(8), [{ table: 'todo', operation: 'DELETE', key: '4', before: row(4, 'z') }], { apply: true });
    await env.db.query(`INSERT INTO todo (id, task) VALUES (4, 'someone else')`);
    await expect(history.revert(del)).rejects.toThrow(/exists again/);
    expect((await live(4)).task).toBe('someone else');
  });

  it('reverts a whole transaction newest first, all or nothing', async () => {
    await env.trail.commit(t(9), [
      { table: 'todo', operation: 'CREATE', key: '10', after: row(10, 'ten') },
      { table: 'todo', operation: 'CREATE', key: '11', after: row(11, 'eleven') },
    ], { apply: true });
    const ids = await env.trail.commit(t(10), [
      { table: 'todo', operation: 'UPDATE', key: '10', before: row(10, 'ten'), after: row(10, 'ten-1') },
      { table: 'todo', operation: 'UPDATE', key: '10', before: row(10, 'ten-1'), after: row(10, 'ten-2') },
      { table: 'todo', operation: 'DELETE', key: '11', before: row(11, 'eleven') },
      { table: 'todo', operation: 'CREATE', key: '12', after: row(12, 'twelve') },
    ], { apply: true });

    // A conflict on one row leaves every row as it was.
    await env.db.query(`UPDATE todo SET task = 'meddled' WHERE id = 12`);
    await expect(history.revertTransaction(ids[0])).rejects.toThrow(BemiRevertConflictError);
    expect((await live(10)).task).toBe('ten-2');
    expect(await live(11)).toBeNull();
    await env.db.query(`UPDATE todo SET task = 'twelve' WHERE id = 12`);

    await wal.read();
    await history.revertTransaction(ids[2]);
    expect((await live(10)).task).toBe('ten');
    expect((await live(11)).task).toBe('eleven');
    expect(await live(12)).toBeNull();
    const changes = await wal.readChanges();
    // One transaction, each statement tagged with the change it undoes.
    expect(new Set(changes.map((c) => c.xid)).size).toBe(1);
    expect(changes.map((c) => [c.operation, c.context?.revertOf])).toEqual([
      ['DELETE', ids[3]],
      ['INSERT', ids[2]],
      ['UPDATE', ids[1]],
      ['UPDATE', ids[0]],
    ]);
  });

  it("joins the caller's transaction when given its EntityManager", async () => {
    const [create] = await env.trail.commit(t(11), [{ table: 'todo', operation: 'CREATE', key: '20', after: row(20, 'twenty') }], { apply: true });
    await env.orm.em
      .fork()
      .transactional(async (em) => {
        await history.revert(create, { em });
        throw new Error('caller rolls back');
      })
      .catch(() => undefined);
    expect((await live(20)).task).toBe('twenty');
  });

  it('refuses changes it cannot invert', async () => {
    const [truncate] = await env.trail.commit(t(12), [{ table: 'todo', operation: 'TRUNCATE', key: null }]);
    await expect(history.revert(truncate)).rejects.toThrow(BemiRevertUnsupportedError);
    // Without REPLICA IDENTITY FULL a DELETE's before image holds only the key.
    const [keyOnly] = await env.trail.commit(t(13), [{ table: 'todo', operation: 'DELETE', key: '30', before: { id: 30 } }]);
    await expect(history.revert(keyOnly)).rejects.toThrow(/holds only the key/);
    const [noBefore] = await env.trail.commit(t(13, 5), [{ table: 'todo', operation: 'CREATE', key: '31', after: row(31, 'a') }, { table: 'todo', operation: 'UPDATE', key: '31', before: {}, after: row(31, 'b') }], { apply: true });
    const [, update] = await env.history.transaction(noBefore);
    await expect(history.revert(update)).rejects.toThrow(/before image lacks .*task.*REPLICA IDENTITY FULL/);
    await expect(history.revert('not-a-uuid')).rejects.toThrow(/argument "change"/);
  });
});
