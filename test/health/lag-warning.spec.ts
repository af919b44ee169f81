import { createTestDatabase, type TestDatabase } from '../support/database';
import { installTriggers, startWorker, stopAndDropSlot, waitFor } from '../capture/support/capture-helpers';
import type { CaptureWorker } from '../../lib/capture/capture.worker';

describe('lag warnings', () => {
  let db: TestDatabase;
  beforeAll(async () => {
    db = await createTestDatabase('lag_warning');
    await db.query(`CREATE TABLE tracked (id int PRIMARY KEY, v text)`);
    await installTriggers(db);
  });
  afterAll(() => db.drop());

  it('are logged even with progress lines turned off', async () => {
    let worker: CaptureWorker | undefined;
    try {
      const started = await startWorker(db, { progressIntervalMs: 0, lagWarningBytes: 1 });
      worker = started.worker;
      await db.query(`INSERT INTO tracked SELECT g, 'burst' FROM generate_series(1, 20000) g`);
      await waitFor(() => /Capture is falling behind: lag \d+ bytes.*see docs\/health\.md/.test(started.logger.text('warn')), 'a lag warning', 30_000);
      expect(started.logger.text('log')).not.toMatch(/^Captured \d+ changes/m);
    } finally {
      await stopAndDropSlot(worker, db);
    }
  });
});
