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
      // Writes keep coming until the warning shows, so the check (every 5 s) always finds WAL
      // the worker has not confirmed yet, however fast it catches up.
      let next = 1;
      await waitFor(
        async () => {
          await db.query(`INSERT INTO tracked SELECT g, 'burst' FROM generate_series($1::int, $1::int + 999) g`, [next]);
          next += 1000;
          return /Capture is falling behind: lag \d+ bytes.*see docs\/health\.md/.test(started.logger.text('warn'));
        },
        'a lag warning',
        30_000,
        100,
      );
      expect(started.logger.text('log')).not.toMatch(/^Captured \d+ changes/m);
    } finally {
      await stopAndDropSlot(worker, db);
    }
  });
});
