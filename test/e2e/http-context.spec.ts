import type { INestApplication } from '@nestjs/common';
import request from 'supertest';
import { createTestDatabase, type TestDatabase } from '../support/database';
import { createTodoApp, prepareTodoDatabase } from '../support/todo-app';
import { WalReader } from '../support/wal-reader';

describe.each(['express', 'fastify'] as const)('HTTP context on %s', (platform) => {
  let db: TestDatabase;
  let app: INestApplication;
  let wal: WalReader;
  let http: () => ReturnType<typeof request>;

  beforeAll(async () => {
    db = await createTestDatabase(`http_${platform}`);
    await prepareTodoDatabase((sql) => db.query(sql));
    app = await createTodoApp({
      dbUrl: db.url,
      platform,
      bemi: { context: (req) => ({ layer: 'forRoot', requestId: req.headers['x-request-id'] }) },
    });
    // A listening server: supertest would otherwise open one ephemeral server per request.
    await app.listen(0, '127.0.0.1');
    const url = (await app.getUrl()).replace('[::1]', '127.0.0.1');
    http = () => request(url);
    wal = await WalReader.create(db.url);
  });

  afterAll(async () => {
    await wal?.close();
    await app?.close();
    await db?.drop();
  });

  beforeEach(() => wal.readChanges());

  it('attributes each of 200 concurrent requests to its own user', async () => {
    const users = Array.from({ length: 200 }, (_, i) => 1000 + i);
    const responses = await Promise.all(
      users.map((user) =>
        http()
          .post('/todo')
          .set('x-user-id', String(user))
          .set('x-request-id', `req-${user}`)
          // varied pauses make the requests' awaits interleave
          .send({ task: `task of ${user}`, delayMs: (user * 7) % 23 }),
      ),
    );
    expect(responses.every((r) => r.status === 201)).toBe(true);

    const changes = await wal.readChanges();
    expect(changes).toHaveLength(200);
    const seen = new Set<number>();
    for (const change of changes) {
      const owner = Number(/task of (\d+)/.exec(change.data)?.[1]);
      expect(change.context).toMatchObject({ userId: owner, requestId: `req-${owner}`, endpoint: '/todo', method: 'POST' });
      seen.add(owner);
    }
    expect(seen.size).toBe(200);
  });

  it('merges defaults < forRoot < class decorator < method decorators < bemi.set()', async () => {
    const created = await http().post('/todo').set('x-user-id', '7').send({ task: 'merge me' });
    const id = created.body.id;
    await wal.readChanges();

    await http().put(`/todo/${id}/complete`).set('x-user-id', '7').set('x-request-id', 'r-1').expect(200);
    const [update] = await wal.readChanges();
    expect(update.operation).toBe('UPDATE');
    expect(update.context).toEqual({
      endpoint: '/todo/:id/complete', // the route pattern, not the URL
      method: 'PUT',
      params: { id: String(id) },
      userId: 7,
      requestId: 'r-1',
      area: 'todos',
      action: 'todo.complete',
      todoId: id,
      completedVia: 'api',
      layer: 'set', // forRoot < class < method < set()
    });
  });

  it('keeps bemi.set() calls made in a guard, before the interceptor, over decorator values', async () => {
    const res = await http().get('/todo/context').set('x-user-id', '4').set('x-tenant', 'acme').expect(200);
    expect(res.body).toEqual({ endpoint: '/todo/context', method: 'GET', userId: 4, area: 'todos', tenant: 'acme', layer: 'guard' });
  });

  it('exposes the current context to handlers through BemiService.get()', async () => {
    const res = await http().get('/todo/context').set('x-user-id', '3').expect(200);
    expect(res.body).toEqual({ endpoint: '/todo/context', method: 'GET', userId: 3, layer: 'class', area: 'todos' });
  });

  it('writes without a user still record the endpoint, and deletes get context', async () => {
    const created = await http().post('/todo').send({ task: 'anon' });
    await http().delete(`/todo/${created.body.id}`).expect(204);
    const changes = await wal.readChanges();
    expect(changes.map((c) => [c.operation, c.context?.endpoint, c.context?.userId])).toEqual([
      ['INSERT', '/todo', undefined],
      ['DELETE', '/todo/:id', undefined],
    ]);
  });
});
