import { Logger, Module, type INestApplication } from '@nestjs/common';
import type { ModuleRef } from '@nestjs/core';
import { Test } from '@nestjs/testing';
import { EntitySchema } from '@mikro-orm/core';
import { MikroOrmModule } from '@mikro-orm/nestjs';
import { PostgreSqlDriver } from '@mikro-orm/postgresql';
import { BEMI_RESOLVED_OPTIONS } from '../../lib/options/options.constants';
import type { BemiModuleOptions } from '../../lib/options/bemi-options.interfaces';
import { validateBemiOptions } from '../../lib/options/bemi-options.validator';
import { BemiRetentionService } from '../../lib/retention/retention.service';
import { waitFor } from '../capture/support/capture-helpers';
import { createTestDatabase, type TestDatabase } from '../support/database';
import { createChangesTable } from '../support/changes-table';
import { PRUNE_INDEX, seedChanges, series } from './support';

const Thing = new EntitySchema<{ id: number }>({ name: 'Thing', properties: { id: { type: 'number', primary: true } } });

describe('BemiRetentionService', () => {
  let db: TestDatabase;
  let app: INestApplication | undefined;

  beforeAll(async () => {
    db = await createTestDatabase('retention_service');
    await createChangesTable(db);
    await db.query(PRUNE_INDEX);
  });

  afterEach(async () => {
    await app?.close();
    app = undefined;
    await db.query(`TRUNCATE changes`);
    jest.restoreAllMocks();
  });

  afterAll(() => db?.drop());

  async function boot(options: BemiModuleOptions, withOrm = false): Promise<INestApplication> {
    @Module({
      imports: withOrm ? [MikroOrmModule.forRoot({ driver: PostgreSqlDriver, clientUrl: db.url, entities: [Thing], pool: { min: 0, max: 2 } })] : [],
      providers: [{ provide: BEMI_RESOLVED_OPTIONS, useFactory: () => validateBemiOptions(options) }, BemiRetentionService],
    })
    class AppModule {}
    const moduleRef = await Test.createTestingModule({ imports: [AppModule] }).compile();
    app = moduleRef.createNestApplication({ logger: false });
    await app.init();
    return app;
  }

  const count = async () => (await db.query(`SELECT count(*)::int AS n FROM changes`))[0].n as number;
  const old = () => series('todo', 30, new Date(Date.now() - 10 * 86_400_000).toISOString());

  it('prunes right after bootstrap, again every interval, on a timer that keeps no process alive, until shutdown', async () => {
    await seedChanges(db, [...old(), ...series('todo', 2, new Date().toISOString())]);
    const a = await boot({ retention: { maxAge: '1d', interval: '1s', batchSize: 7 }, capture: { destination: db.url } });
    const service = a.get(BemiRetentionService);
    expect(service.enabled).toBe(true);
    await waitFor(async () => (await count()) === 2, 'the first run');
    await waitFor(() => service.lastResult() !== undefined, 'the first result');
    expect(service.lastResult()).toMatchObject({ rows: 30, batches: 5, dryRun: false });
    const timer = (service as unknown as { timer?: NodeJS.Timeout }).timer;
    expect(timer?.hasRef()).toBe(false);

    await seedChanges(db, old());
    await waitFor(async () => (await count()) === 2, 'the run one interval later', 15_000);

    await a.close();
    app = undefined;
    expect((service as unknown as { timer?: NodeJS.Timeout }).timer).toBeUndefined();
    await seedChanges(db, old());
    await new Promise((r) => setTimeout(r, 1500));
    expect(await count()).toBe(32);
  });

  it("without capture's connection, prunes the MikroORM database, in the schema history/capture name", async () => {
    await db.query(`CREATE SCHEMA audit; CREATE TABLE audit.changes (LIKE changes INCLUDING ALL)`);
    await seedChanges(db, old(), 'audit.changes');
    const a = await boot({ retention: { maxAge: '1d', interval: '1h' }, capture: { schema: 'audit' } }, true);
    await waitFor(async () => (await db.query(`SELECT count(*)::int AS n FROM audit.changes`))[0].n === 0, 'pruning of audit.changes');
    expect(a.get(BemiRetentionService).lastResult()).toMatchObject({ rows: 30 });
    await db.query(`DROP SCHEMA audit CASCADE`);
  });

  it('runs never overlap: a second call while one runs gets that run', async () => {
    await seedChanges(db, old());
    const a = await boot({ retention: { maxAge: '1d', interval: '1h' }, capture: { destination: db.url } });
    const service = a.get(BemiRetentionService);
    await waitFor(() => service.lastResult() !== undefined, 'the bootstrap run');
    await seedChanges(db, old());
    const [first, second] = await Promise.all([service.prune(), service.prune()]);
    expect(first).toBe(second);
    expect(first.rows).toBe(30);
    const dry = await service.prune({ dryRun: true });
    expect(dry).toMatchObject({ dryRun: true, rows: 0 });
  });

  it('shutdown stops a run between batches', async () => {
    await seedChanges(db, [...old(), ...old(), ...old()]);
    const options = { retention: { maxAge: '1d', batchSize: 1 }, capture: { destination: db.url } };
    const service = new BemiRetentionService(validateBemiOptions(options), {} as ModuleRef);
    let shutdown: Promise<void> | undefined;
    // Shut down as the first batch is logged: the run ends after that batch.
    jest.spyOn(Logger.prototype, 'log').mockImplementation(() => {
      shutdown ??= service.onApplicationShutdown();
    });
    const result = await service.prune();
    await shutdown;
    expect(result.stopped).toBe(true);
    expect(result.rows).toBe(1);
    expect(await count()).toBe(90 - result.rows);
  });

  it('a failed run is logged and does not stop the application; without the option nothing runs', async () => {
    const errors = jest.spyOn(Logger.prototype, 'error').mockImplementation(() => undefined);
    const a = await boot({ retention: { maxAge: '1d', interval: '1h' }, capture: { destination: db.url.replace(/\/[^/]+$/, '/no_such_db') } });
    await waitFor(() => errors.mock.calls.length > 0, 'the error line');
    expect(String(errors.mock.calls[0][0])).toMatch(/^Pruning failed: database "no_such_db" does not exist/);
    await a.close();
    app = undefined;

    await seedChanges(db, old());
    const off = await boot({ capture: { destination: db.url } });
    const service = off.get(BemiRetentionService);
    expect(service.enabled).toBe(false);
    await expect(service.prune()).rejects.toThrow(/retention is not configured/);
    expect(await count()).toBe(30);
  });

  it('rejects bad options when the provider is created, naming the option', async () => {
    await expect(boot({ retention: { maxAge: '1 year' } })).rejects.toThrow(/Retention option "maxAge" is not a duration: "1 year"/);
  });
});
