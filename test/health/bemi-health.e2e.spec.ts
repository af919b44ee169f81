import { Controller, Get, Module } from '@nestjs/common';
import { HealthCheck, HealthCheckService, TerminusModule } from '@nestjs/terminus';
import { EntityManager } from '@mikro-orm/postgresql';
import request from 'supertest';
import { BemiCaptureService, BemiHealthIndicator, BemiService } from '../../lib';
import { createTestDatabase, type TestDatabase } from '../support/database';
import { Todo } from '../support/todo';
import { createTodoApp, ormOf, prepareTodoDatabase } from '../support/todo-app';
import { startWorker, stopAndDropSlot, syncCapture, uniqueSlot, waitFor, installTriggers } from '../capture/support/capture-helpers';
import type { BemiCaptureWorker } from '../../lib/capture/capture.worker';

/** Thresholds the test changes between requests. */
const limits: { slotName?: string; maxLagBytes?: number } = {};

@Controller('health')
class HealthController {
  constructor(
    private readonly health: HealthCheckService,
    private readonly bemi: BemiHealthIndicator,
  ) {}

  @Get()
  @HealthCheck()
  check() {
    return this.health.check([() => this.bemi.isHealthy('bemi', { ...limits })]);
  }
}

@Module({ imports: [TerminusModule.forRoot({ logger: false })], controllers: [HealthController] })
class HealthModule {}

function healthApp(db: TestDatabase, bemi: Parameters<typeof createTodoApp>[0]['bemi'] = {}) {
  return createTodoApp({ dbUrl: db.url, bemi, imports: [HealthModule] });
}

describe('BemiHealthIndicator with @nestjs/terminus', () => {
  let db: TestDatabase;

  beforeAll(async () => {
    db = await createTestDatabase('health');
    await prepareTodoDatabase((sql) => db.query(sql));
    await installTriggers(db);
  });
  afterAll(() => db.drop());

  it('is up while the in-process worker streams, and reports the figures', async () => {
    const slot = uniqueSlot();
    const app = await healthApp(db, { capture: { slotName: slot, publicationName: slot, progressIntervalMs: 0 } });
    try {
      await app.get(BemiService).run({ userId: 1 }, async () => {
        const em = ormOf(app).em.fork() as EntityManager;
        em.create(Todo, { task: 'health' });
        await em.flush();
      });
      await waitFor(async () => (await db.query(`SELECT 1 FROM changes WHERE "table" = 'todo'`)).length > 0, 'the change');
      // Other test files write to the same server: allow their WAL in the byte lag.
      const result = await app.get(BemiHealthIndicator).isHealthy('bemi', { maxLagBytes: 2 ** 40 });
      expect(result.bemi).toMatchObject({
        status: 'up',
        workerState: 'streaming',
        slot: { name: slot, exists: true, active: true, walStatus: expect.any(String), lagBytes: expect.any(Number) },
        lagSeconds: expect.any(Number),
        newestChangeAt: expect.any(String),
        stored: { invalidContexts: 0, untrustedContexts: 0, unknownKeys: 0, unstorableChanges: 0, lastUnstorable: null },
      });
      const metrics = await app.get(BemiCaptureService).metrics();
      expect(metrics.changesWritten).toBeGreaterThanOrEqual(1);
      expect(metrics.newestChangeAgeSeconds).toBeLessThan(600);
    } finally {
      await app.close();
      await db.query(`SELECT pg_drop_replication_slot($1)`, [slot]).catch(() => undefined);
    }
  });

  it('turns unhealthy over HTTP when a standalone worker stops while writes continue', async () => {
    const slot = uniqueSlot();
      let worker: BemiCaptureWorker | undefined = (await startWorker(db, { slotName: slot })).worker;
    const app = await healthApp(db);
    try {
      const health = app.get(BemiHealthIndicator);
      limits.slotName = slot;
      limits.maxLagBytes = 2 ** 40;
      await syncCapture(db);
      expect((await health.isHealthy('bemi', limits)).bemi).toMatchObject({ status: 'up', workerState: null, slot: { active: true } });
      const ok = await request(app.getHttpServer()).get('/health');
      expect(ok.status).toBe(200);
      expect(ok.body).toMatchObject({ status: 'ok', info: { bemi: { status: 'up' } } });

      await worker.stop();
      await waitFor(async () => (await db.query(`SELECT 1 FROM pg_replication_slots WHERE slot_name = $1 AND NOT active`, [slot])).length === 1, 'the slot to be released');
      const atStop = (await app.get(BemiCaptureService).metrics({ slotName: slot })).slot.lagBytes!;
      limits.maxLagBytes = atStop + 256 * 1024;
      // Writes go on: ~1 MB of WAL that nobody consumes.
      await db.query(`INSERT INTO todo (task) SELECT repeat(md5(g::text), 30) FROM generate_series(1, 1000) g`);

      const down = (await health.isHealthy('bemi', limits)).bemi;
      expect(down.status).toBe('down');
      expect(down.problems).toEqual([
        `no capture worker is connected to slot "${slot}"`,
        expect.stringMatching(new RegExp(`^the slot holds \\d+ bytes of WAL \\(limit ${limits.maxLagBytes}\\)$`)),
      ]);
      const res = await request(app.getHttpServer()).get('/health');
      expect(res.status).toBe(503);
      // Other test files write to the same server meanwhile: the byte count may have grown.
      expect(res.body).toMatchObject({
        status: 'error',
        error: { bemi: { status: 'down', problems: [(down.problems as string[])[0], expect.stringMatching(/^the slot holds \d+ bytes of WAL/)] } },
      });
    } finally {
      limits.slotName = undefined;
      await app.close();
      if (worker) await stopAndDropSlot(worker, db);
      worker = undefined;
    }
  });

  it('is down, naming the slot, when the slot does not exist', async () => {
    const app = await healthApp(db);
    try {
      const result = await app.get(BemiHealthIndicator).isHealthy('capture', { slotName: 'no_such_slot' });
      expect(result).toEqual({
        capture: expect.objectContaining({ status: 'down', problems: ['replication slot "no_such_slot" does not exist (capture never started, or the slot was dropped)'] }),
      });
    } finally {
      await app.close();
    }
  });

  it('reads the newest change where the trail lives (capture.destination), the slot from the source', async () => {
    const trail = await createTestDatabase('health_trail');
    const slot = uniqueSlot();
    const app = await healthApp(db, { capture: { destination: trail.url, slotName: slot, publicationName: slot, progressIntervalMs: 0 } });
    try {
      await app.get(BemiService).run({ userId: 2 }, async () => {
        const em = ormOf(app).em.fork() as EntityManager;
        em.create(Todo, { task: 'elsewhere' });
        await em.flush();
      });
      await waitFor(async () => (await trail.query(`SELECT 1 FROM changes WHERE after->>'task' = 'elsewhere'`)).length > 0, 'the change in the destination');
      const [{ newest }] = await trail.query(`SELECT max(committed_at) AS newest FROM changes`);
      const metrics = await app.get(BemiCaptureService).metrics();
      expect(metrics.slot).toMatchObject({ name: slot, exists: true, active: true });
      expect(metrics.newestChangeAt).toEqual(newest);
    } finally {
      await app.close();
      await db.query(`SELECT pg_drop_replication_slot($1)`, [slot]).catch(() => undefined);
      await trail.drop();
    }
  });
});
