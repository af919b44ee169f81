import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { BemiCaptureWorker } from '../../lib/capture/capture.worker';
import { withClient, type TestDatabase } from '../support/database';
import type { RecordingLogger } from '../support/recording-logger';
import { createCaptureDatabase, dropCaptureDatabase, installTriggers, startWorker, syncCapture, waitFor } from './support/capture-helpers';
import { freePort, spawnPostgres } from './support/processes';

async function insertItems(db: { url: string }, from: number, to: number): Promise<void> {
  await withClient(db.url, (c) => c.query(`INSERT INTO item (id, v) SELECT g, g FROM generate_series($1::int, $2::int) g`, [from, to]));
}

/** Every id in 1..n was captured as exactly one CREATE. */
async function expectCreatedOnce(db: TestDatabase, n: number): Promise<void> {
  const rows = await db.query(`SELECT primary_key::int AS id, count(*)::int AS times FROM changes WHERE "table" = 'item' AND operation = 'CREATE' GROUP BY 1 ORDER BY 1`);
  expect(rows.length).toBe(n);
  expect(rows.every((r, i) => r.id === i + 1 && r.times === 1)).toBe(true);
}

describe('capture: reconnects and resumes', () => {
  it('after the walsender is terminated (pg_terminate_backend)', async () => {
    const db = await createCaptureDatabase('capture_reconnect', `CREATE TABLE item (id int PRIMARY KEY, v int)`);
    let worker: BemiCaptureWorker | undefined;
    try {
      let logger: RecordingLogger;
      let slotName: string;
      ({ worker, logger, slotName } = await startWorker(db, { reconnectDelayMs: 50, maxReconnectDelayMs: 500 }));
      await insertItems(db, 1, 100);
      await syncCapture(db);
      for (let round = 0; round < 2; round++) {
        const [killed] = await db.query(`SELECT pg_terminate_backend(active_pid) AS ok FROM pg_replication_slots WHERE slot_name = $1`, [slotName]);
        expect(killed.ok).toBe(true);
        await insertItems(db, 101 + round * 100, 200 + round * 100); // written while the stream is down or reconnecting
        await syncCapture(db);
      }
      await expectCreatedOnce(db, 300);
      expect(worker.status().reconnects).toBeGreaterThanOrEqual(2);
      expect(logger.text('warn')).toMatch(/Replication stream lost \(.*terminat/);
      expect(logger.text('log')).toMatch(/Reconnected \(attempt \d+\); resuming at [0-9A-F]+\/[0-9A-F]+/);
    } finally {
      await dropCaptureDatabase(worker, db);
    }
  });

  it('backs off further while the same failure repeats, and starts over once capture moves again', async () => {
    const db = await createCaptureDatabase('capture_backoff', `CREATE TABLE item (id int PRIMARY KEY, v int)`);
    let worker: BemiCaptureWorker | undefined;
    try {
      let logger: RecordingLogger;
      let slotName: string;
      ({ worker, logger, slotName } = await startWorker(db, { reconnectDelayMs: 20, maxReconnectDelayMs: 160 }));
      await syncCapture(db);
      // The destination refuses item's rows with an error that is not about their values: capture
      // must retry (a permission or a trigger may be fixed), never skip them, and wait longer each time.
      await db.query(`CREATE FUNCTION refuse() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN
                        IF NEW."table" = 'item' THEN RAISE EXCEPTION 'refused by a trigger'; END IF; RETURN NEW; END $$;
                      CREATE TRIGGER refuse BEFORE INSERT ON changes FOR EACH ROW EXECUTE FUNCTION refuse()`);
      await insertItems(db, 1, 10);
      const delays = () => [...logger.text('warn').matchAll(/Replication stream lost \(refused by a trigger\); reconnecting in (\d+) ms/g)].map((m) => Number(m[1]));
      await waitFor(() => delays().length >= 6, 'six failed sessions');
      expect(delays().slice(0, 6)).toEqual([20, 40, 80, 160, 160, 160]);
      await db.query(`DROP TRIGGER refuse ON changes`);
      await syncCapture(db);
      await expectCreatedOnce(db, 10);
      // Capture moved again: the next loss waits the first delay again.
      const before = logger.messages('warn').length;
      await db.query(`SELECT pg_terminate_backend(active_pid) FROM pg_replication_slots WHERE slot_name = $1`, [slotName]);
      await waitFor(() => logger.messages('warn').slice(before).some((m) => /Replication stream lost/.test(m)), 'the next loss');
      expect(logger.messages('warn').slice(before).find((m) => /Replication stream lost/.test(m))).toMatch(/reconnecting in 20 ms/);
    } finally {
      await dropCaptureDatabase(worker, db);
    }
  });

  it('after its destination connections are terminated while several writes are in flight', async () => {
    const db = await createCaptureDatabase('capture_destination_loss', `CREATE TABLE item (id int PRIMARY KEY, v int)`);
    let worker: BemiCaptureWorker | undefined;
    try {
      // Small batches: both destination connections are busy most of the time.
      ({ worker } = await startWorker(db, { reconnectDelayMs: 50, maxReconnectDelayMs: 500, batchSize: 7 }));
      const destinationPids = async () =>
        (
          await db.query(
            `SELECT pid FROM pg_stat_activity WHERE datname = current_database() AND pid <> pg_backend_pid() AND backend_type = 'client backend'
               AND (query ILIKE '%changes%' OR query ILIKE '%_bemi_capture_state%' OR query ILIKE '%savepoint%' OR query = 'COMMIT')`,
          )
        ).map((r) => r.pid as number);
      let killed = 0;
      for (let round = 0; round < 30; round++) {
        // 30 transactions of 10 rows; every third round, the capture's destination backends die.
        await insertItems(db, round * 10 + 1, round * 10 + 10);
        if (round % 3 === 2) {
          for (const pid of await destinationPids()) {
            await db.query(`SELECT pg_terminate_backend($1)`, [pid]);
            killed++;
          }
        }
      }
      await syncCapture(db, 60_000);
      expect(killed).toBeGreaterThan(0);
      await expectCreatedOnce(db, 300);
      expect(worker.status().reconnects).toBeGreaterThanOrEqual(1);
      // The stored position is never behind the newest stored change: commits never overtook each
      // other. (It may be ahead: transactions with nothing to store also move it, e.g. the
      // worker's own writes, which PostgreSQL 14 still streams as empty transactions.)
      const [state] = await db.query(`SELECT s.last_commit_position >= (SELECT max(commit_position) FROM changes) AS ok FROM _bemi_capture_state s`);
      expect(state.ok).toBe(true);
    } finally {
      await dropCaptureDatabase(worker, db);
    }
  });

  it('after the PostgreSQL server crashes and restarts', async () => {
    const dataDir = mkdtempSync(join(tmpdir(), 'bemi-restart-'));
    const port = await freePort();
    let server = await spawnPostgres(dataDir, port);
    const db: TestDatabase = {
      name: 'postgres',
      url: server.url,
      query: (sql, params) => withClient(server.url, async (c) => (await c.query(sql, params as unknown[])).rows),
      drop: async () => undefined,
    };
    let worker: BemiCaptureWorker | undefined;
    try {
      await db.query(`CREATE TABLE item (id int PRIMARY KEY, v int)`);
      await installTriggers(db);
      let logger: RecordingLogger;
      ({ worker, logger } = await startWorker(db, { reconnectDelayMs: 100, maxReconnectDelayMs: 1000 }));
      await insertItems(db, 1, 200);
      await syncCapture(db);
      await insertItems(db, 201, 300); // committed right before the crash: must survive it
      // Immediate shutdown (SIGQUIT to the postmaster): no clean checkpoint, crash recovery on start.
      const postmaster = Number(readFileSync(join(dataDir, 'postmaster.pid'), 'utf8').split('\n')[0]);
      process.kill(postmaster, 'SIGQUIT');
      server.run.child.kill('SIGKILL');
      await server.run.exited;
      await waitFor(() => worker!.status().state === 'reconnecting', 'the worker to notice', 30_000);
      server = await spawnPostgres(dataDir, port);
      await insertItems(db, 301, 400);
      await syncCapture(db, 60_000);
      await expectCreatedOnce(db, 400);
      expect(worker.status().reconnects).toBeGreaterThanOrEqual(1);
      expect(logger.text('log')).toMatch(/Reconnected/);
    } finally {
      await worker?.stop();
      server.run.child.kill('SIGTERM');
      await server.run.exited;
      rmSync(dataDir, { recursive: true, force: true });
    }
  }, 180_000);
});
