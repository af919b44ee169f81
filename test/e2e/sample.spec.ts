import type { INestApplication } from '@nestjs/common';
import request from 'supertest';
import { createTestDatabase, type TestDatabase } from '../support/database';
import { WalReader } from '../support/wal-reader';

/** Drives the sample app (sample/src) over real HTTP against real PostgreSQL. */
describe('sample Todo API', () => {
  let db: TestDatabase;
  let app: INestApplication;
  let url: string;
  let wal: WalReader;

  beforeAll(async () => {
    db = await createTestDatabase('sample');
    process.env.DATABASE_URL = db.url;
    const { bootstrap } = await import('../../sample/src/main');
    app = await bootstrap(0);
    url = (await app.getUrl()).replace('[::1]', '127.0.0.1');
    wal = await WalReader.create(db.url);
  });

  afterAll(async () => {
    await wal?.close();
    await app?.close();
    await db?.drop();
    delete process.env.DATABASE_URL;
  });

  it('runs its migrations: the todo table and the Bemi triggers', async () => {
    const triggers = await db.query(`SELECT tgrelid::regclass::text AS rel FROM pg_trigger WHERE tgname = '_bemi_context'`);
    expect(triggers).toEqual([{ rel: 'todo' }]);
  });

  it('records who did what: create, complete, delete, and the cleanup job', async () => {
    const created = await request(url).post('/todo').set('x-user-id', '187234').set('authorization', 'Bearer sample-secret-token').send({ task: 'Sleep' }).expect(201);
    expect(created.body).toEqual({ id: expect.any(Number), task: 'Sleep', isCompleted: false });
    const id = created.body.id;
    await request(url).put(`/todo/${id}/complete`).set('x-user-id', '187234').expect(200);
    const other = await request(url).post('/todo').set('x-user-id', '5').send({ task: 'Eat' }).expect(201);
    await request(url).delete(`/todo/${other.body.id}`).set('x-user-id', '5').expect(204);
    await request(url).post('/jobs/cleanup').expect(200, { removed: 1 });

    // The WAL also holds the capture worker's own writes (changes, _bemi_capture_state).
    const changes = (await wal.readChanges()).filter((c) => c.table === 'public.todo');
    expect(changes.map((c) => [c.operation, c.context])).toEqual([
      ['INSERT', expect.objectContaining({ endpoint: '/todo', method: 'POST', userId: 187234 })],
      ['UPDATE', expect.objectContaining({ endpoint: '/todo/:id/complete', userId: 187234, action: 'todo.complete', previouslyCompleted: false, params: { id: String(id) } })],
      ['INSERT', expect.objectContaining({ endpoint: '/todo', userId: 5 })],
      ['DELETE', expect.objectContaining({ endpoint: '/todo/:id', userId: 5, action: 'todo.delete' })],
      ['DELETE', expect.objectContaining({ endpoint: '/jobs/cleanup', job: 'cleanup-completed' })],
    ]);
    expect(changes[0].context).toHaveProperty('ip', '127.0.0.1');
    // The sample puts the Authorization header into context: it reaches the WAL masked.
    expect(changes[0].context).toHaveProperty('authorization', '[REDACTED]');
    expect(changes[2].context).not.toHaveProperty('authorization');
    expect(JSON.stringify(changes)).not.toContain('sample-secret-token');
  });

  it('reports capture health on GET /health (terminus)', async () => {
    const res = await request(url).get('/health').expect(200);
    expect(res.body).toMatchObject({ status: 'ok', info: { bemi: { status: 'up', workerState: 'streaming', slot: { exists: true, active: true } } } });
  });

  it('serves the trail, time travel and per-user changes from the captured audit trail', async () => {
    const created = await request(url).post('/todo').set('x-user-id', '77').send({ task: 'Read' }).expect(201);
    const id = created.body.id;
    await request(url).put(`/todo/${id}/complete`).set('x-user-id', '78').expect(200);

    // Capture is asynchronous: wait until both changes are in the trail.
    let trail: any[] = [];
    for (let i = 0; i < 200 && trail.length < 2; i++) {
      trail = (await request(url).get(`/todo/${id}/history`).expect(200)).body;
      if (trail.length < 2) await new Promise((r) => setTimeout(r, 50));
    }
    expect(trail.map((c) => [c.operation, c.before, c.after, c.context.userId])).toEqual([
      ['CREATE', {}, { id, task: 'Read', isCompleted: false }, 77],
      ['UPDATE', { id, task: 'Read', isCompleted: false }, { id, task: 'Read', isCompleted: true }, 78],
    ]);
    expect(trail[1].context).toMatchObject({ endpoint: '/todo/:id/complete', action: 'todo.complete', previouslyCompleted: false });

    const atCreation = await request(url).get(`/todo/${id}/at`).query({ time: trail[0].committedAt }).expect(200);
    expect(atCreation.body).toEqual({ id, task: 'Read', isCompleted: false });
    const atCompletion = await request(url).get(`/todo/${id}/at`).query({ time: trail[1].committedAt }).expect(200);
    expect(atCompletion.body).toEqual({ id, task: 'Read', isCompleted: true });

    const byUser = (await request(url).get('/changes').query({ userId: 78 }).expect(200)).body;
    expect(byUser.map((c: any) => [c.table, c.operation, c.primaryKey])).toEqual([['todo', 'UPDATE', String(id)]]);

    await request(url).get(`/todo/${id}/at`).query({ time: 'yesterday-ish' }).expect(400);
    await request(url).get(`/todo/${id}/at`).query({ time: '2000-01-01T00:00:00Z' }).expect(400); // before capture started
    await request(url).get(`/todo/${id}/at`).expect(400);
  });

  it('answers bad input with 400 and unknown ids with 404', async () => {
    await request(url).post('/todo').send({}).expect(400);
    await request(url).put('/todo/999999/complete').expect(404);
  });
});
