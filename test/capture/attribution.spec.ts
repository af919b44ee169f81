import type { BemiCaptureWorker } from '../../lib/capture/capture.worker';
import type { TestDatabase } from '../support/database';
import { changesOf, createCaptureDatabase, dropCaptureDatabase, inTransaction, startWorker, syncCapture, withContext } from './support/capture-helpers';

/**
 * Each change carries the context of its own statement. A statement on a table without the
 * context trigger emits no message, so it must not inherit the one an earlier statement of the
 * same transaction emitted.
 */
describe('capture: context of tables without the trigger (real PostgreSQL, in-process worker)', () => {
  let db: TestDatabase;
  let worker: BemiCaptureWorker;

  beforeAll(async () => {
    db = await createCaptureDatabase('capture_attribution', `CREATE TABLE tracked (id int PRIMARY KEY); CREATE TABLE bare (id int PRIMARY KEY); CREATE TABLE paused (id int PRIMARY KEY)`);
    await db.query(`DROP TRIGGER _bemi_context ON bare; ALTER TABLE paused DISABLE TRIGGER _bemi_context`);
    ({ worker } = await startWorker(db));
  });

  afterAll(() => dropCaptureDatabase(worker, db));

  it('gives rows of a table without the trigger (or with it disabled) no context, never the previous statement’s', async () => {
    await inTransaction(db.url, [
      withContext({ actor: 'A' }, `INSERT INTO tracked VALUES (1)`),
      // What bemi.run({ actor: 'B' }) sends: the comment is there, but no trigger turns it into a message.
      withContext({ actor: 'B' }, `INSERT INTO bare VALUES (1)`),
      `INSERT INTO bare VALUES (2)`, // a raw write, no comment at all
      withContext({ actor: 'B' }, `INSERT INTO paused VALUES (1)`),
      withContext({ actor: 'C' }, `INSERT INTO tracked VALUES (2)`),
    ]);
    await syncCapture(db);
    const rows = [...(await changesOf(db))].filter((r) => r.table !== 'capture_sync');
    expect(rows.map((r) => [r.table, r.primary_key, r.context])).toEqual([
      ['tracked', '1', { actor: 'A' }],
      ['bare', '1', {}],
      ['bare', '2', {}],
      ['paused', '1', {}],
      ['tracked', '2', { actor: 'C' }],
    ]);
  });
});
