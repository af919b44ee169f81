import type { INestApplication } from '@nestjs/common';
import { EntityManager } from '@mikro-orm/postgresql';
import { BemiCaptureOptionsError, BemiCaptureService, BemiService } from '../../lib';
import { validateBemiOptions } from '../../lib/options/bemi-options.validator';
import { createTestDatabase, type TestDatabase } from '../support/database';
import { Todo } from '../support/todo';
import { createTodoApp, ormOf, prepareTodoDatabase } from '../support/todo-app';
import { uniqueSlot, waitFor } from './support/capture-helpers';

describe('BemiModule.forRoot({ capture })', () => {
  let db: TestDatabase;

  beforeAll(async () => {
    db = await createTestDatabase('capture_module');
    await prepareTodoDatabase((sql) => db.query(sql));
  });

  afterAll(() => db.drop());

  it('runs the worker with the application, on the MikroORM connection by default', async () => {
    const slot = uniqueSlot();
    let app: INestApplication | undefined = await createTodoApp({
      dbUrl: db.url,
      bemi: { capture: { slotName: slot, publicationName: slot, progressIntervalMs: 0 } },
    });
    try {
      const capture = app.get(BemiCaptureService);
      expect(capture.enabled).toBe(true);
      expect(capture.status()?.state).toBe('streaming');
      const em = ormOf(app).em.fork() as EntityManager;
      await app.get(BemiService).run({ job: 'nightly', userId: 7 }, async () => {
        em.create(Todo, { task: 'from the app' });
        await em.flush();
      });
      await waitFor(async () => (await db.query(`SELECT 1 FROM changes WHERE "table" = 'todo'`)).length > 0, 'the change');
      const [row] = await db.query(`SELECT operation, after, context FROM changes WHERE "table" = 'todo'`);
      expect(row).toEqual({ operation: 'CREATE', after: { id: 1, task: 'from the app', is_completed: false }, context: { job: 'nightly', userId: 7 } });
      const lag = await capture.lag();
      expect(lag).toEqual({ bytes: expect.any(Number), seconds: expect.any(Number) });
      await app.close(); // shutdown stops the worker; the slot stays for the next start
      app = undefined;
      expect(capture.status()?.state).toBe('stopped');
      await waitFor(async () => (await db.query(`SELECT 1 FROM pg_replication_slots WHERE slot_name = $1 AND NOT active`, [slot])).length === 1, 'the idle slot');
      const [state] = await db.query(`SELECT database, started_at <= now() AS started, last_commit_position IS NOT NULL AS stored FROM _bemi_capture_state WHERE slot_name = $1`, [slot]);
      expect(state).toEqual({ database: db.name, started: true, stored: true });
    } finally {
      await app?.close();
      await db.query(`SELECT pg_drop_replication_slot($1)`, [slot]).catch(() => undefined);
    }
  });

  it('does nothing without the capture option', async () => {
    const app = await createTodoApp({ dbUrl: db.url });
    try {
      const capture = app.get(BemiCaptureService);
      expect(capture.enabled).toBe(false);
      expect(capture.status()).toBeNull();
      expect(await capture.lag()).toBeNull();
    } finally {
      await app.close();
    }
  });

  it('rejects a wrong capture option when the module options are validated, naming it', () => {
    // validateBemiOptions is the module's options provider: it runs before anything starts.
    expect(() => validateBemiOptions({ capture: { batchSize: 0 } })).toThrow(BemiCaptureOptionsError);
    expect(() => validateBemiOptions({ capture: { slotName: 'Bad-Name' } })).toThrow(/Capture option "slotName" must be lower-case letters/);
    expect(() => validateBemiOptions({ capture: { sauce: 1 } as never })).toThrow(/Capture option "sauce" is not a known option/);
    // Checked once, here, with every default filled: the capture service does not validate again.
    expect(validateBemiOptions({ capture: { slotName: 'ok_1' } }).capture).toMatchObject({ slotName: 'ok_1', publicationName: 'nestjs_bemi', batchSize: 2000, lagWarningBytes: 64 * 1024 * 1024, schemas: ['public'] });
  });
});
