import type { INestApplication } from '@nestjs/common';
import { BemiOptionsError, BemiRetentionOptionsError, BemiRetentionService } from '../../lib';
import { validateBemiOptions } from '../../lib/options/bemi-options.validator';
import { waitFor } from '../capture/support/capture-helpers';
import { createTestDatabase, type TestDatabase } from '../support/database';
import { createTodoApp, prepareTodoDatabase } from '../support/todo-app';
import { createChangesTable } from '../support/changes-table';
import { seedChanges, series } from './support';

describe('BemiModule.forRoot({ retention })', () => {
  let db: TestDatabase;
  let app: INestApplication | undefined;

  beforeAll(async () => {
    db = await createTestDatabase('retention_module');
    await prepareTodoDatabase((sql) => db.query(sql));
    await createChangesTable(db);
  });
  afterAll(async () => {
    await app?.close();
    await db?.drop();
  });

  it('prunes through the application’s MikroORM connection, keeping what is younger than maxAge', async () => {
    const day = 86_400_000;
    await seedChanges(db, [...series('todo', 12, new Date(Date.now() - 40 * day).toISOString()), ...series('todo', 3, new Date(Date.now() - day).toISOString())]);
    app = await createTodoApp({ dbUrl: db.url, bemi: { retention: { maxAge: '30d', batchSize: 5 } } });
    const retention = app.get(BemiRetentionService);
    expect(retention.enabled).toBe(true);
    await waitFor(() => retention.lastResult() !== undefined, 'the first pruning run');
    expect(retention.lastResult()).toMatchObject({ rows: 12, dryRun: false });
    expect(await db.query(`SELECT count(*)::int AS n FROM changes`)).toEqual([{ n: 3 }]);
  });

  it('rejects wrong retention options when the module options are validated, naming them', () => {
    expect(() => validateBemiOptions({ retention: { maxAge: '1 month' } })).toThrow(BemiRetentionOptionsError);
    expect(() => validateBemiOptions({ retention: { maxAge: '1 month' } })).toThrow(/Retention option "maxAge" is not a duration: "1 month"/);
    expect(() => validateBemiOptions({ retention: {} })).toThrow(/nothing would ever be pruned/);
    expect(() => validateBemiOptions({ retentoin: {} } as never)).toThrow(BemiOptionsError);
    expect(validateBemiOptions({ retention: { maxAge: '365d' } }).retention).toEqual({ maxAgeMs: 365 * 86_400_000, perTableMs: {}, intervalMs: 3_600_000, batchSize: 5000 });
  });
});
