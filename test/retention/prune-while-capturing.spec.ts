import type { BemiCaptureWorker } from '../../lib/capture/capture.worker';
import { pruneChanges } from '../../lib/retention/prune-changes';
import { dropCaptureDatabase, installTriggers, startWorker, syncCapture } from '../capture/support/capture-helpers';
import { createTestDatabase, withClient, type TestDatabase } from '../support/database';
import { RecordingLogger } from '../support/recording-logger';
import { PRUNE_INDEX, seedChanges, series } from './support';

describe('pruning while the capture worker writes', () => {
  let db: TestDatabase;
  let worker: BemiCaptureWorker | undefined;

  beforeAll(async () => {
    db = await createTestDatabase('prune_capture');
  });

  afterAll(() => dropCaptureDatabase(worker, db));

  it('deletes every old change and loses or duplicates none of those captured meanwhile', async () => {
    await installTriggers(db);
    await db.query(`CREATE TABLE items (id serial PRIMARY KEY, n int NOT NULL)`);
    const started = await startWorker(db, { batchSize: 50 }); // creates changes
    worker = started.worker;
    await db.query(PRUNE_INDEX);
    const yearAgo = new Date(Date.now() - 400 * 86_400_000).toISOString();
    await seedChanges(db, [...series('items', 1500, yearAgo), ...series('todo', 500, yearAgo)]);

    // Writes that capture streams into changes while pruning deletes from it, in one transaction
    // per statement and in larger ones, with updates and deletes mixed in.
    const done = { inserted: 0, updated: 0, deleted: 0 };
    const writes = withClient(db.url, async (c) => {
      for (let i = 0; i < 25; i++) {
        done.inserted += (await c.query(`INSERT INTO items (n) SELECT g FROM generate_series(1, 20) g`)).rowCount!;
        done.updated += (await c.query(`UPDATE items SET n = n + 1 WHERE id % 7 = ${i % 7}`)).rowCount!;
      }
      done.deleted += (await c.query(`DELETE FROM items WHERE id % 10 = 0`)).rowCount!;
    });
    const logger = new RecordingLogger();
    const [result] = await Promise.all([pruneChanges(db.url, { maxAge: '365d', batchSize: 100, logger }), writes]);
    await syncCapture(db, 120_000);

    expect(result).toMatchObject({ rows: 2000, batches: 20 });
    expect(logger.messages('log')).toHaveLength(20);
    expect(await db.query(`SELECT count(*)::int AS n FROM changes WHERE committed_at < now() - interval '365 days'`)).toEqual([{ n: 0 }]);
    // Every captured change is there once: compare with what the statements reported.
    const byOp = await db.query<{ operation: string; n: number; distinct_rows: number }>(
      `SELECT operation, count(*)::int AS n, count(DISTINCT (commit_position, seq))::int AS distinct_rows FROM changes WHERE "table" = 'items' GROUP BY 1 ORDER BY 1`,
    );
    const ops = Object.fromEntries(byOp.map((r) => [r.operation, r]));
    expect(done.inserted).toBe(500);
    expect(done.updated).toBeGreaterThan(0);
    expect(done.deleted).toBe(50);
    expect(ops.CREATE).toEqual({ operation: 'CREATE', n: done.inserted, distinct_rows: done.inserted });
    expect(ops.UPDATE).toEqual({ operation: 'UPDATE', n: done.updated, distinct_rows: done.updated });
    expect(ops.DELETE).toEqual({ operation: 'DELETE', n: done.deleted, distinct_rows: done.deleted });
    expect(await db.query(`SELECT count(DISTINCT after->>'id')::int AS n FROM changes WHERE "table" = 'items' AND operation = 'CREATE'`)).toEqual([{ n: 500 }]);
    expect(started.logger.text('error')).toBe('');
  }, 240_000); // liveness bound: creating a slot waits for other test files' long transactions
});
