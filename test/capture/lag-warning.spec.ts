import { Client } from 'pg';
import type { TestDatabase } from '../support/database';
import { createCaptureDatabase, startWorker, stopAndDropSlot, waitFor } from './support/capture-helpers';
import type { BemiCaptureWorker } from '../../lib/capture/capture.worker';

describe('lag warnings', () => {
  let db: TestDatabase;
  beforeAll(async () => {
    db = await createCaptureDatabase('lag_warning', `CREATE TABLE tracked (id int PRIMARY KEY, v text)`);
  });
  afterAll(() => db.drop());

  it('are logged even with progress lines turned off', async () => {
    let worker: BemiCaptureWorker | undefined;
    try {
      const started = await startWorker(db, { progressIntervalMs: 0, lagWarningBytes: 1 });
      worker = started.worker;
      // The trail is locked against the worker's writes, so what it receives stays unconfirmed and
      // the check (every 5 s) finds it behind, however fast the machine.
      const lock = new Client({ connectionString: db.url });
      await lock.connect();
      try {
        await lock.query(`BEGIN; LOCK TABLE changes IN SHARE MODE`);
        await db.query(`INSERT INTO tracked SELECT g, 'burst' FROM generate_series(1, 1000) g`);
        await waitFor(() => /Capture is falling behind: lag \d+ bytes.*see docs\/health\.md/.test(started.logger.text('warn')), 'a lag warning', 30_000, 100);
        await lock.query('COMMIT');
      } finally {
        await lock.end();
      }
      expect(started.logger.text('log')).not.toMatch(/^Captured \d+ changes/m);
    } finally {
      await stopAndDropSlot(worker, db);
    }
  });
});
