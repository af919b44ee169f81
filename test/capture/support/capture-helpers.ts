import { randomBytes } from 'node:crypto';
import { bemiMigrationSql } from '../../../lib';
import { resolveCaptureOptions, type BemiCaptureOptions, type ResolvedCaptureOptions } from '../../../lib/options/capture-options';
import { BemiCaptureWorker } from '../../../lib/capture/capture.worker';
import { createTestDatabase, withClient, type TestDatabase } from '../../support/database';
import { RecordingLogger } from '../../support/recording-logger';

/** Slot names are server-wide and test files share one server: each test gets its own. */
export function uniqueSlot(): string {
  return `bemi_test_${randomBytes(5).toString('hex')}`;
}

export function captureOptions(db: TestDatabase, extra: BemiCaptureOptions = {}): ResolvedCaptureOptions {
  const slotName = extra.slotName ?? uniqueSlot();
  return resolveCaptureOptions({ source: db.url, progressIntervalMs: 0, heartbeatIntervalMs: 60_000, publicationName: slotName, ...extra, slotName });
}

export async function startWorker(db: TestDatabase, extra: BemiCaptureOptions = {}): Promise<{ worker: BemiCaptureWorker; logger: RecordingLogger; slotName: string }> {
  const logger = new RecordingLogger();
  const options = captureOptions(db, { logger, ...extra });
  const worker = new BemiCaptureWorker(options);
  await worker.start();
  return { worker, logger, slotName: options.slotName! };
}

/**
 * Stops a worker and drops its slot so the test database can be dropped. The walsender leaves
 * the slot a moment after the connection closes, so wait for that first.
 */
export async function stopAndDropSlot(worker: BemiCaptureWorker | undefined, db: TestDatabase): Promise<void> {
  if (!worker) return;
  await worker.stop();
  const slot = worker.status().slotName;
  await waitFor(async () => (await db.query(`SELECT 1 FROM pg_replication_slots WHERE slot_name = $1 AND active`, [slot])).length === 0, 'the slot to be released');
  await db.query(`SELECT pg_drop_replication_slot(slot_name) FROM pg_replication_slots WHERE slot_name = $1`, [slot]);
}

/**
 * A fresh database for a worker to capture: `ddl` (the application's tables) first, then the
 * context triggers and the sync table, as `installTriggers` puts them.
 */
export async function createCaptureDatabase(label: string, ddl = '', triggers: Parameters<typeof bemiMigrationSql>[0] = {}): Promise<TestDatabase> {
  const db = await createTestDatabase(label);
  if (ddl) await db.query(ddl);
  await installTriggers(db, triggers);
  return db;
}

/** Stops the worker (if there is one), drops its slot, then the database. */
export async function dropCaptureDatabase(worker: BemiCaptureWorker | undefined, db: TestDatabase | undefined): Promise<void> {
  if (!db) return;
  await stopAndDropSlot(worker, db);
  await db.drop();
}

/**
 * Installs the context triggers (as an application would through its migration) plus a sync table.
 * Without REPLICA IDENTITY FULL unless asked: these tests set it per table where they need it.
 */
export async function installTriggers(db: TestDatabase, options: Parameters<typeof bemiMigrationSql>[0] = {}): Promise<void> {
  await db.query(`CREATE TABLE IF NOT EXISTS capture_sync (id serial PRIMARY KEY, token text NOT NULL)`);
  await db.query(bemiMigrationSql({ replicaIdentityFull: false, ...options }).up);
}

/**
 * Commits a marker row and waits until it is in `changes`. Changes are stored in commit order,
 * so everything committed before the marker is stored too.
 */
export async function syncCapture(db: TestDatabase, timeoutMs = 30_000, destination: TestDatabase = db): Promise<void> {
  const token = randomBytes(6).toString('hex');
  await db.query(`INSERT INTO capture_sync (token) VALUES ($1)`, [token]);
  await waitFor(
    async () => (await destination.query(`SELECT 1 FROM changes WHERE "table" = 'capture_sync' AND after->>'token' = $1`, [token])).length > 0,
    `capture of sync token ${token}`,
    timeoutMs,
  );
}

/** Polls `check` until it is true; fails with `what` after `timeoutMs` (a liveness bound, not a speed claim). */
export async function waitFor(check: () => Promise<boolean> | boolean, what: string, timeoutMs = 30_000, everyMs = 50): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (await check()) return;
    if (Date.now() > deadline) throw new Error(`Timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, everyMs));
  }
}

/** Runs statements in one transaction on one connection. */
export async function inTransaction(url: string, statements: string[]): Promise<void> {
  await withClient(url, async (c) => {
    await c.query('BEGIN');
    for (const s of statements) await c.query(s);
    await c.query('COMMIT');
  });
}

/** The leading comment the ORM hook writes, for tests that write SQL by hand. */
export function withContext(context: unknown, sql: string): string {
  return `/*Bemi ${JSON.stringify(context)} Bemi*/ ${sql}`;
}

/** Captured rows of a table, in stream order, without the sync markers (each row's context resolved, as the view gives it). */
export async function changesOf(db: TestDatabase, table?: string): Promise<any[]> {
  return db.query(
    `SELECT primary_key, "table", schema, operation, before, after, context, committed_at, transaction_id::text, position::text, commit_position::text, seq
       FROM changes_with_context WHERE "table" <> 'capture_sync' ${table ? `AND "table" = $1` : ''} ORDER BY commit_position, seq`,
    table ? [table] : [],
  );
}
