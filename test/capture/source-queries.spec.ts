import { Client } from 'pg';
import type { TestDatabase } from '../support/database';
import { createCaptureDatabase, dropCaptureDatabase, startWorker, syncCapture } from './support/capture-helpers';
import type { BemiCaptureWorker } from '../../lib/capture/capture.worker';

/**
 * The worker's source connection is shared by the stream handler (catalog reads on relation
 * messages) and three timers (heartbeat, lag, publication refresh). pg 8 warns when a query is
 * sent while another runs on the same client, and pg 9 will refuse: they must take turns.
 */
describe('capture: one query at a time on the source connection', () => {
  let db: TestDatabase;
  let worker: BemiCaptureWorker | undefined;
  /** Queries sent to a client while an earlier one of the same client had not settled. */
  const overlaps: string[] = [];
  const inFlight = new WeakMap<object, number>();
  let spy: jest.SpyInstance;

  beforeAll(async () => {
    db = await createCaptureDatabase('capture_source_queries');
    // (pg's own DeprecationWarning goes to the real process, out of a test's reach: count here.)
    const query = Client.prototype.query;
    spy = jest.spyOn(Client.prototype, 'query').mockImplementation(function (this: Client, ...args: unknown[]) {
      const busy = inFlight.get(this) ?? 0;
      if (busy > 0) overlaps.push(String(typeof args[0] === 'string' ? args[0] : (args[0] as { text?: string })?.text).slice(0, 80));
      inFlight.set(this, busy + 1);
      const done = () => inFlight.set(this, (inFlight.get(this) ?? 1) - 1);
      const result = (query as (...a: unknown[]) => unknown).apply(this, args);
      if (result && typeof (result as Promise<unknown>).then === 'function') (result as Promise<unknown>).then(done, done);
      else done();
      return result;
    } as never);
  });

  afterAll(async () => {
    spy.mockRestore();
    await dropCaptureDatabase(worker, db);
  });

  it('timers and relation messages never overlap their queries (no pg concurrent-query warning)', async () => {
    // Every timer as often as allowed, and a new relation (a catalog read) every transaction.
    const started = await startWorker(db, { heartbeatIntervalMs: 50, progressIntervalMs: 50, publicationRefreshMs: 50, heartbeatMessages: true });
    worker = started.worker;
    for (let i = 0; i < 40; i++) {
      await db.query(`CREATE TABLE t_${i} (id int PRIMARY KEY, v text); INSERT INTO t_${i} VALUES (1, 'x'); ALTER TABLE t_${i} ADD COLUMN w int; UPDATE t_${i} SET w = 1;`);
      await new Promise((r) => setTimeout(r, 10));
    }
    await syncCapture(db);
    await new Promise((r) => setTimeout(r, 300)); // a few more timer rounds
    // The replication connection and the destination writers are other clients; only overlaps count.
    expect(overlaps).toEqual([]);
    expect(started.logger.text('warn')).not.toMatch(/already executing/);
  });
});
