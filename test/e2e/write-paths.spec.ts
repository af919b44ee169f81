import type { INestApplication } from '@nestjs/common';
import { EntityManager } from '@mikro-orm/postgresql';
import { BemiService } from '../../lib';
import { createTestDatabase, type TestDatabase } from '../support/database';
import { Todo } from '../support/todo';
import { createTodoApp, ormOf, prepareTodoDatabase } from '../support/todo-app';
import { WalReader, type AttributedChange } from '../support/wal-reader';

/**
 * Every MikroORM write path, through the real hook, trigger and WAL: each row change must be
 * preceded (in its own transaction) by the context that was current when it was written.
 */
describe('context reaches the WAL for every MikroORM write path', () => {
  let db: TestDatabase;
  let app: INestApplication;
  let wal: WalReader;
  let bemi: BemiService;
  let em: EntityManager;
  const userQueries: string[] = [];
  const logged: string[] = [];

  beforeAll(async () => {
    db = await createTestDatabase('write_paths');
    await prepareTodoDatabase((sql) => db.query(sql));
    app = await createTodoApp({
      dbUrl: db.url,
      orm: {
        // The user's own hook must keep working next to ours.
        onQuery: (sql: string) => {
          userQueries.push(sql);
          return sql;
        },
        debug: ['query'],
        logger: (message: string) => logged.push(message),
      },
    });
    bemi = app.get(BemiService);
    wal = await WalReader.create(db.url);
  });

  afterAll(async () => {
    await wal?.close();
    await app?.close();
    await db?.drop();
  });

  beforeEach(async () => {
    em = ormOf(app).em.fork() as EntityManager;
    await wal.readChanges(); // start each test from an empty stream
  });

  const run = <T>(ctx: Record<string, unknown>, fn: () => Promise<T>) => bemi.run(ctx, fn);
  const summary = (changes: AttributedChange[]) => changes.map((c) => [c.operation, c.context]);

  it('em.flush(): batched insert, update and delete', async () => {
    const todos = await run({ userId: 1 }, async () => {
      const created = [em.create(Todo, { task: 'a' }), em.create(Todo, { task: 'b' }), em.create(Todo, { task: 'c' })];
      await em.flush();
      return created;
    });
    await run({ userId: 2 }, async () => {
      todos[0].isCompleted = true;
      todos[1].isCompleted = true;
      await em.flush();
    });
    await run({ userId: 3 }, async () => {
      em.remove(todos[2]);
      await em.flush();
    });
    expect(summary(await wal.readChanges())).toEqual([
      ['INSERT', { userId: 1 }],
      ['INSERT', { userId: 1 }],
      ['INSERT', { userId: 1 }],
      ['UPDATE', { userId: 2 }],
      ['UPDATE', { userId: 2 }],
      ['DELETE', { userId: 3 }],
    ]);
  });

  it('em.insert, insertMany, nativeUpdate, nativeDelete, upsert, upsertMany', async () => {
    const id = await run({ path: 'insert' }, () => em.insert(Todo, { task: 'one' }));
    await run({ path: 'insertMany' }, () => em.insertMany(Todo, [{ task: 'two' }, { task: 'three' }]));
    await run({ path: 'nativeUpdate' }, () => em.nativeUpdate(Todo, { id }, { task: 'one!' }));
    await run({ path: 'upsert' }, () => em.upsert(Todo, { id, task: 'one!!', isCompleted: false }));
    await run({ path: 'upsertMany' }, () => em.upsertMany(Todo, [{ id, task: 'one!!!', isCompleted: true }]));
    await run({ path: 'nativeDelete' }, () => em.nativeDelete(Todo, { id }));
    expect(summary(await wal.readChanges())).toEqual([
      ['INSERT', { path: 'insert' }],
      ['INSERT', { path: 'insertMany' }],
      ['INSERT', { path: 'insertMany' }],
      ['UPDATE', { path: 'nativeUpdate' }],
      ['UPDATE', { path: 'upsert' }],
      ['UPDATE', { path: 'upsertMany' }],
      ['DELETE', { path: 'nativeDelete' }],
    ]);
  });

  it('QueryBuilder writes and raw em.execute()', async () => {
    await run({ path: 'qb.insert' }, () => em.createQueryBuilder(Todo).insert({ task: 'qb' }).execute());
    await run({ path: 'qb.update' }, () => em.createQueryBuilder(Todo).update({ task: 'qb2' }).where({ task: 'qb' }).execute());
    await run({ path: 'qb.delete' }, () => em.createQueryBuilder(Todo).delete().where({ task: 'qb2' }).execute());
    await run({ path: 'execute' }, () => em.execute(`insert into todo (task) values (?)`, ['raw']));
    await run({ path: 'execute-cte' }, () => em.execute(`with gone as (delete from todo where task = 'raw' returning id) select count(*) from gone`));
    await run({ path: 'connection' }, () => em.getConnection().execute(`update todo set task = 'x' where false`));
    // EXPLAIN ANALYZE runs the statement; a comment the caller put in front must not win over ours.
    await run({ path: 'explain-analyze' }, () => em.execute(`/*Bemi {"path":"forged"} Bemi*/ EXPLAIN (ANALYZE, FORMAT JSON) INSERT INTO todo (task) VALUES ('explained')`));
    expect(summary(await wal.readChanges())).toEqual([
      ['INSERT', { path: 'qb.insert' }],
      ['UPDATE', { path: 'qb.update' }],
      ['DELETE', { path: 'qb.delete' }],
      ['INSERT', { path: 'execute' }],
      ['DELETE', { path: 'execute-cte' }],
      ['INSERT', { path: 'explain-analyze' }],
    ]);
  });

  it('inside em.transactional() and explicit transactions, statement by statement', async () => {
    await run({ step: 'outer' }, () =>
      em.transactional(async (tx) => {
        tx.create(Todo, { task: 't1' });
        await tx.flush();
        await bemi.run({ step: 'inner' }, () => tx.nativeUpdate(Todo, { task: 't1' }, { task: 't2' }));
        await tx.nativeDelete(Todo, { task: 't2' });
      }),
    );
    const fork = em.fork();
    await fork.begin();
    await run({ step: 'explicit' }, () => fork.insert(Todo, { task: 'e1' }));
    await fork.nativeUpdate(Todo, { task: 'e1' }, { task: 'e2' }); // outside any context
    await fork.commit();

    const changes = await wal.readChanges();
    expect(summary(changes)).toEqual([
      ['INSERT', { step: 'outer' }],
      ['UPDATE', { step: 'inner' }],
      ['DELETE', { step: 'outer' }],
      ['INSERT', { step: 'explicit' }],
      ['UPDATE', null],
    ]);
    expect(new Set(changes.slice(0, 3).map((c) => c.xid)).size).toBe(1);
    expect(changes[3].xid).toBe(changes[4].xid);
  });

  it('a rolled-back transaction leaves neither the context nor the change', async () => {
    await expect(
      run({ userId: 9 }, () =>
        em.transactional(async (tx) => {
          await tx.insert(Todo, { task: 'doomed' });
          throw new Error('rollback');
        }),
      ),
    ).rejects.toThrow('rollback');
    await run({ userId: 10 }, () => em.insert(Todo, { task: 'kept' }));
    const txs = await wal.read();
    expect(txs).toHaveLength(1);
    expect(JSON.stringify(txs[0].events)).not.toContain('doomed');
    expect(JSON.stringify(txs[0].events)).not.toContain('"userId":9');
  });

  it('never touches SELECTs, and keeps the user onQuery hook working', async () => {
    logged.length = 0;
    userQueries.length = 0;
    await run({ userId: 5 }, async () => {
      await em.find(Todo, {});
      await em.count(Todo, {});
      await em.execute('select 1 as one');
      await em.insert(Todo, { task: 'logged' });
    });
    const queries = logged.filter((l) => /select|insert/i.test(l));
    expect(queries.filter((q) => /select/i.test(q) && !/insert/i.test(q)).every((q) => !q.includes('/*Bemi'))).toBe(true);
    expect(queries.filter((q) => /insert into "todo"/i.test(q)).every((q) => q.includes('/*Bemi {"userId":5} Bemi*/'))).toBe(true);
    expect(queries.some((q) => /insert into "todo"/i.test(q))).toBe(true);
    expect(userQueries.some((q) => /^insert into "todo"/i.test(q))).toBe(true);
    expect(userQueries.some((q) => q.includes('/*Bemi'))).toBe(false);
  });

  // MikroORM 7 only: em.getKysely() runs its queries past onQuery (and past MikroORM's logger),
  // and a Kysely plugin cannot put a comment in front (kysely requires a plugin to return a node
  // of the kind it was given, and no insert/update/delete node compiles anything before its
  // keyword). So such writes are a documented bypass: recorded, but with no context.
  const kyselyOf = (e: EntityManager): any => (e as unknown as { getKysely?: () => unknown }).getKysely?.();
  const hasKysely = typeof (EntityManager.prototype as unknown as { getKysely?: unknown }).getKysely === 'function';
  // Skipped on MikroORM 6 (the lockfile stack, npm test): it has no em.getKysely(). The same test
  // runs on MikroORM 7 in the next-stack leg (npm run test:stack-next), which CI runs too.
  (hasKysely ? it : it.skip)(
    `em.getKysely() writes are recorded with no context (the documented bypass); em.execute() beside them keeps it${hasKysely ? '' : ' (skipped: MikroORM 6 has no em.getKysely())'}`,
    async () => {
      await run({ path: 'kysely' }, async () => {
        await kyselyOf(em).insertInto('todo').values({ task: 'bare' }).execute();
        await em.execute(`update todo set task = 'dressed' where task = 'bare'`);
      });
      await run({ path: 'kysely-tx' }, () =>
        em.transactional(async (tx) => {
          await tx.nativeUpdate(Todo, { task: 'dressed' }, { task: 'dressed2' });
          await kyselyOf(tx as EntityManager).deleteFrom('todo').where('task', '=', 'dressed2').execute();
        }),
      );
      // The Kysely statement after a context statement in one transaction gets no context either
      // (the trigger resets it), never the previous statement's.
      expect(summary(await wal.readChanges())).toEqual([
        ['INSERT', null],
        ['UPDATE', { path: 'kysely' }],
        ['UPDATE', { path: 'kysely-tx' }],
        ['DELETE', null],
      ]);
    },
  );

  it('writes outside any context carry no comment and get no context', async () => {
    await em.insert(Todo, { task: 'background' });
    expect(summary(await wal.readChanges())).toEqual([['INSERT', null]]);
  });
});
