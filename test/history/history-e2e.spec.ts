import { MikroORM } from '@mikro-orm/core';
import { PostgreSqlDriver } from '@mikro-orm/postgresql';
import { installBemiQueryHook } from '../../lib';
import type { BemiCaptureWorker } from '../../lib/capture/capture.worker';
import { BemiContextStore } from '../../lib/context/bemi-context.store';
import { BemiChange } from '../../lib/history/bemi-change.entity';
import { BemiHistory } from '../../lib/history/bemi-history';
import { BemiBeforeCaptureError, BemiRevertConflictError } from '../../lib/history/history.errors';
import type { HistoryChange } from '../../lib/history/history.interfaces';
import { formatMicros, parseInstant } from '../../lib/history/history-time';
import { createTestDatabase, type TestDatabase } from '../support/database';
import { installTriggers, startWorker, syncCapture } from '../capture/support/capture-helpers';
import { APP_DDL, OrderLine, OrderLineSchema, Todo, TodoSchema } from './history-fixture';

/** Microseconds of a change's commit, and instants around it. */
const micros = (c: HistoryChange) => parseInstant(c.commitTimestamp, 'test', 'at').upperMicros;
const between = (a: HistoryChange, b: HistoryChange) => formatMicros((micros(a) + micros(b)) / 2n);
const justBefore = (c: HistoryChange) => formatMicros(micros(c) - 1n);
/** The same instant written with a +05:30 offset. */
function inKolkata(iso: string): string {
  const ms = Date.parse(iso) + 330 * 60_000;
  return new Date(ms).toISOString().slice(0, 23) + iso.slice(23, 26) + '+05:30';
}

describe('history end to end: MikroORM writes → WAL capture → BemiHistory (real PostgreSQL)', () => {
  let db: TestDatabase;
  let worker: BemiCaptureWorker;
  let orm: MikroORM;
  let history: BemiHistory;
  let store: BemiContextStore;
  let uninstall: () => void;

  const write = <T>(context: Record<string, unknown>, fn: (em: MikroORM['em']) => Promise<T>) =>
    store.run(context, () => orm.em.fork().transactional((em) => fn(em)));

  beforeAll(async () => {
    db = await createTestDatabase('history_e2e');
    await db.query(APP_DDL);
    // Rows from before capture existed: 100 stays untouched, 101 is updated later.
    await db.query(`INSERT INTO todo (id, task) VALUES (100, 'untouched'), (101, 'old task'); SELECT setval('todo_id_seq', 200)`);
    await db.query(`INSERT INTO order_line VALUES (9, 'Z', 1)`);
    await installTriggers(db, { replicaIdentityFull: true });
    ({ worker } = await startWorker(db));
    orm = await MikroORM.init({ driver: PostgreSqlDriver, clientUrl: db.url, entities: [TodoSchema, OrderLineSchema, BemiChange], allowGlobalContext: true });
    store = new BemiContextStore();
    uninstall = installBemiQueryHook(orm, { store });
    history = BemiHistory.create(orm, { store });
  });

  afterAll(async () => {
    uninstall?.();
    await orm?.close(true);
    await worker?.stop();
    // The walsender lets go of the slot a moment after the worker disconnects; drop() needs it free.
    for (let i = 0; i < 100 && (await db.query(`SELECT 1 FROM pg_replication_slots WHERE database = $1 AND active`, [db.name])).length; i++) {
      await new Promise((r) => setTimeout(r, 50));
    }
    await db?.drop();
  });

  it('reconstructs a record created, updated, deleted and re-created with the same key, at and between commits', async () => {
    const id = await write({ userId: 1, endpoint: '/todo' }, async (em) => {
      const todo = em.create(Todo, { task: 'Sleep', isCompleted: false, amount: '12.50', dueAt: new Date('2024-03-05T08:00:00Z') });
      await em.flush();
      return todo.id;
    });
    await write({ userId: 1, endpoint: '/todo/rename' }, async (em) => {
      (await em.findOneOrFail(Todo, id)).task = 'Sleep well';
    });
    await write({ userId: 2, endpoint: '/todo/complete' }, async (em) => {
      const todo = await em.findOneOrFail(Todo, id);
      todo.isCompleted = true;
      todo.views = 3;
    });
    await write({ userId: 2, endpoint: '/todo/delete' }, async (em) => em.nativeDelete(Todo, { id }));
    await write({ userId: 3, endpoint: '/todo/again' }, async (em) => em.insert(Todo, { id, task: 'Wake up', isCompleted: false }));
    await syncCapture(db);

    const trail = await history.changes(Todo, { primaryKey: id });
    expect(trail.map((c) => c.operation)).toEqual(['CREATE', 'UPDATE', 'UPDATE', 'DELETE', 'CREATE']);
    expect(trail.map((c) => c.context.endpoint)).toEqual(['/todo', '/todo/rename', '/todo/complete', '/todo/delete', '/todo/again']);
    expect(history.diff(trail[2])).toEqual({ isCompleted: [false, true], views: [null, 3] });
    expect(trail[0].after).toMatchObject({ id, task: 'Sleep', isCompleted: false, amount: '12.50' }); // numeric digits kept exactly

    const task = async (at: string | Date) => ((await history.at(Todo, id, at)) as Todo | null)?.task ?? null;
    const states = ['Sleep', 'Sleep well', 'Sleep well', null, 'Wake up'];
    for (const [i, change] of trail.entries()) {
      expect(await task(change.commitTimestamp)).toBe(states[i]); // exactly at the commit
      expect(await task(change.committedAt)).toBe(states[i]); // the Date of that millisecond
      expect(await task(inKolkata(change.commitTimestamp))).toBe(states[i]); // another offset, same instant
      expect(await task(justBefore(change))).toBe(i === 0 ? null : states[i - 1]);
      if (i > 0) expect(await task(between(trail[i - 1], change))).toBe(states[i - 1]);
    }
    const completed = (await history.at(Todo, id, trail[2].commitTimestamp)) as Todo;
    expect(completed).toMatchObject({ isCompleted: true, views: 3, amount: '12.50' });
    expect(completed.dueAt).toEqual(new Date('2024-03-05T08:00:00Z'));
  });

  it('answers for rows from before capture: from the first change, or from the live table', async () => {
    await write({ job: 'rename-101' }, async (em) => {
      (await em.findOneOrFail(Todo, 101)).task = 'new task';
    });
    await syncCapture(db);
    const [update] = await history.changes(Todo, { primaryKey: 101 });
    expect(update.operation).toBe('UPDATE');
    expect(((await history.at(Todo, 101, justBefore(update))) as Todo).task).toBe('old task');
    expect(((await history.at(Todo, 101, update.commitTimestamp)) as Todo).task).toBe('new task');
    expect(((await history.at(Todo, 100, justBefore(update))) as Todo).task).toBe('untouched');
    expect(((await history.at(OrderLine, { orderId: 9, productCode: 'Z' }, update.commitTimestamp)) as OrderLine).quantity).toBe(1);
    // Before capture started there is nothing to answer with.
    const [state] = await db.query(`SELECT min(started_at) AS s FROM _bemi_capture_state`);
    await expect(history.at(Todo, 100, new Date(state.s.getTime() - 1000))).rejects.toThrow(BemiBeforeCaptureError);
  });

  it('rebuilds whole tables, deletes and composite keys included', async () => {
    const [a, b] = await write({ job: 'lines' }, async (em) => {
      em.create(OrderLine, { orderId: 1, productCode: 'A"1', quantity: 2 });
      em.create(OrderLine, { orderId: 1, productCode: 'B', quantity: 5 });
      await em.flush();
      return [1, 2];
    });
    expect([a, b]).toEqual([1, 2]);
    await write({ job: 'lines-2' }, async (em) => {
      (await em.findOneOrFail(OrderLine, { orderId: 1, productCode: 'A"1' })).quantity = 3;
      em.remove(await em.findOneOrFail(OrderLine, { orderId: 1, productCode: 'B' }));
    });
    await syncCapture(db);
    const changes = await history.changes(OrderLine);
    expect(changes.map((c) => `${c.operation}:${c.primaryKey}`)).toEqual(['CREATE:[1,"A\\"1"]', 'CREATE:[1,"B"]', 'UPDATE:[1,"A\\"1"]', 'DELETE:[1,"B"]']);
    const label = (rows: OrderLine[]) => rows.map((l) => `${l.orderId}/${l.productCode}=${l.quantity}`);
    expect(label((await history.tableAt(OrderLine, justBefore(changes[0]))) as OrderLine[])).toEqual(['9/Z=1']);
    expect(label((await history.tableAt(OrderLine, changes[1].commitTimestamp)) as OrderLine[])).toEqual(['1/A"1=2', '1/B=5', '9/Z=1']);
    expect(label((await history.tableAt(OrderLine, changes[3].commitTimestamp)) as OrderLine[])).toEqual(['1/A"1=3', '9/Z=1']);

    // The table "now" equals the live table.
    const now = ((await history.tableAt(Todo, new Date(Date.now() + 60_000))) as Todo[]).map((x) => `${x.id}:${x.task}`);
    const live = (await db.query(`SELECT id, task FROM todo ORDER BY id`)).map((r) => `${r.id}:${r.task}`);
    expect(now).toEqual(live);
  });

  it('keeps keyset pages stable while new changes are captured', async () => {
    const seen: HistoryChange[] = [];
    let page = await history.changes(Todo, { limit: 3 });
    let n = 0;
    while (page.length > 0) {
      seen.push(...page);
      if (n++ < 3) {
        await write({ job: `page-${n}` }, async (em) => em.insert(Todo, { task: `added while paging ${n}`, isCompleted: false }));
        await syncCapture(db);
      }
      page = await history.changes(Todo, { limit: 3, after: page[page.length - 1] });
    }
    const all = await history.changes(Todo, { limit: 1000 });
    expect(seen.map((c) => c.id)).toEqual(all.map((c) => c.id));
    expect(all.filter((c) => String(c.after.task).startsWith('added while paging')).length).toBe(3);
  });

  it('reverts update, delete and create through MikroORM, audited, and refuses on conflict', async () => {
    const id = await write({ userId: 7 }, async (em) => {
      const todo = em.create(Todo, { task: 'v1', isCompleted: false });
      await em.flush();
      return todo.id;
    });
    await write({ userId: 7 }, async (em) => {
      (await em.findOneOrFail(Todo, id)).task = 'v2';
    });
    await syncCapture(db);
    const [create, update] = await history.changes(Todo, { primaryKey: id });

    await store.run({ userId: 99, endpoint: '/admin/undo' }, () => history.revert(update));
    await syncCapture(db);
    const afterRevert = await history.changes(Todo, { primaryKey: id });
    expect(afterRevert.map((c) => c.operation)).toEqual(['CREATE', 'UPDATE', 'UPDATE']);
    expect(afterRevert[2].context).toEqual({ userId: 99, endpoint: '/admin/undo', revertOf: update.id });
    expect(history.diff(afterRevert[2])).toEqual({ task: ['v2', 'v1'] });

    // Someone edits the row: reverting the CREATE now would destroy their work.
    await write({ userId: 8 }, async (em) => {
      (await em.findOneOrFail(Todo, id)).isCompleted = true;
    });
    await expect(history.revert(create)).rejects.toThrow(BemiRevertConflictError);
    expect((await db.query(`SELECT task, is_completed FROM todo WHERE id = $1`, [id]))[0]).toEqual({ task: 'v1', is_completed: true });

    // Delete, then revert the delete, then revert the re-creation.
    await write({ userId: 8 }, async (em) => em.nativeDelete(Todo, { id }));
    await syncCapture(db);
    const del = (await history.changes(Todo, { primaryKey: id, operation: 'DELETE' }))[0];
    await history.revert(del);
    expect((await db.query(`SELECT task, is_completed FROM todo WHERE id = $1`, [id]))[0]).toEqual({ task: 'v1', is_completed: true });
    await syncCapture(db);
    const restored = (await history.changes(Todo, { primaryKey: id, operation: 'CREATE' })).pop()!;
    expect(restored.context).toEqual({ revertOf: del.id });
    await history.revert(restored);
    expect(await db.query(`SELECT 1 FROM todo WHERE id = $1`, [id])).toEqual([]);
  });

  it('reverts a whole captured transaction', async () => {
    const ids = await write({ job: 'batch' }, async (em) => {
      const x = em.create(Todo, { task: 'x', isCompleted: false });
      const y = em.create(Todo, { task: 'y', isCompleted: false });
      await em.flush();
      x.task = 'x2';
      em.remove(y);
      await em.flush();
      return [x.id, y.id];
    });
    await syncCapture(db);
    const [first] = await history.changes(Todo, { primaryKey: ids[0] });
    const tx = await history.transaction(first);
    expect(tx.map((c) => `${c.operation}:${c.primaryKey}`)).toEqual([`CREATE:${ids[0]}`, `CREATE:${ids[1]}`, `UPDATE:${ids[0]}`, `DELETE:${ids[1]}`]);
    await history.revertTransaction(first);
    expect(await db.query(`SELECT id FROM todo WHERE id = ANY($1)`, [ids])).toEqual([]);
    await syncCapture(db);
    const undo = await history.changes({ context: { revertOf: tx[3].id } });
    expect(undo.map((c) => c.operation)).toEqual(['CREATE']);
  });
});
