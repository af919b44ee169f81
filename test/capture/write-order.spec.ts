import { Client } from 'pg';
import type { BemiCaptureWorker } from '../../lib/capture/capture.worker';
import { withClient, type TestDatabase } from '../support/database';
import { createCaptureDatabase, dropCaptureDatabase, startWorker, syncCapture, waitFor } from './support/capture-helpers';

/**
 * The worker writes over two destination connections. A later transaction's batch may finish its
 * COPY first, but must not commit (nor move the stored position, nor be acknowledged) before the
 * earlier one: otherwise a crash in between would lose the earlier transaction for good.
 */
describe('capture: destination commits keep stream order', () => {
  let db: TestDatabase;
  let worker: BemiCaptureWorker | undefined;
  let holder: Client | undefined;

  beforeAll(async () => {
    db = await createCaptureDatabase('capture_write_order', `CREATE TABLE slow_item (id int PRIMARY KEY); CREATE TABLE item (id int PRIMARY KEY)`);
  });
  afterAll(async () => {
    await holder?.end().catch(() => undefined);
    await dropCaptureDatabase(worker, db);
  });

  it('a later batch whose COPY finishes first waits for the earlier one to commit', async () => {
    ({ worker } = await startWorker(db, { maxBatchDelayMs: 0 }));
    await syncCapture(db); // the worker is streaming
    // Storing a slow_item change waits for an advisory lock this test holds: the first
    // transaction's write stalls inside its COPY on one destination connection.
    await db.query(`CREATE FUNCTION stall_slow_item() RETURNS trigger LANGUAGE plpgsql AS $$
      BEGIN
        IF NEW."table" = 'slow_item' THEN PERFORM pg_advisory_xact_lock(424242); END IF;
        RETURN NEW;
      END $$;
      CREATE TRIGGER stall_slow_item BEFORE INSERT ON changes FOR EACH ROW EXECUTE FUNCTION stall_slow_item();`);
    holder = new Client({ connectionString: db.url });
    await holder.connect();
    await holder.query('SELECT pg_advisory_lock(424242)');

    await db.query(`INSERT INTO slow_item (id) VALUES (1)`);
    await waitFor(
      async () => (await db.query(`SELECT 1 FROM pg_stat_activity WHERE datname = current_database() AND wait_event_type = 'Lock' AND wait_event = 'advisory'`)).length > 0,
      'the first write to stall on the advisory lock',
    );
    // The second transaction goes to the other connection; its COPY meets no lock.
    await db.query(`INSERT INTO item (id) VALUES (2)`);
    // Its COPY is done when its connection sits idle in its transaction (or, wrongly, once its
    // row is visible: then the assertions below say so).
    await waitFor(
      async () =>
        (
          await db.query(`SELECT 1 FROM pg_stat_activity WHERE datname = current_database() AND backend_type = 'client backend' AND state = 'idle in transaction'
                          UNION ALL SELECT 1 FROM changes WHERE "table" = 'item'`)
        ).length > 0,
      'the second write to finish its COPY',
    );
    // A second on, it must still be uncommitted: nothing visible, stored position unchanged.
    const storedBefore = await db.query(`SELECT last_commit_position::text AS p FROM _bemi_capture_state`);
    await new Promise((resolve) => setTimeout(resolve, 1000));
    expect(await db.query(`SELECT "table" FROM changes WHERE "table" IN ('slow_item', 'item')`)).toEqual([]);
    expect(await db.query(`SELECT last_commit_position::text AS p FROM _bemi_capture_state`)).toEqual(storedBefore);

    await holder.query('SELECT pg_advisory_unlock(424242)');
    await syncCapture(db);
    const stored = await db.query(`SELECT "table", primary_key FROM changes WHERE "table" IN ('slow_item', 'item') ORDER BY commit_position, seq`);
    expect(stored).toEqual([
      { table: 'slow_item', primary_key: '1' },
      { table: 'item', primary_key: '2' },
    ]);
    await withClient(db.url, async (c) => c.query(`DROP TRIGGER stall_slow_item ON changes`));
  });
});
