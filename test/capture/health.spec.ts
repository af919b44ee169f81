import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { BemiCaptureSetupError } from '../../lib/capture/source-setup';
import { bemiChangesTableSql } from '../../lib/trail/changes-table';
import type { BemiCaptureWorker } from '../../lib/capture/capture.worker';
import { createTestDatabase, urlFor, withClient, type TestDatabase } from '../support/database';
import { installTriggers, startWorker, stopAndDropSlot, syncCapture, uniqueSlot, waitFor } from './support/capture-helpers';
import { freePort, spawnPostgres } from './support/processes';

describe('capture: startup checks, publication, heartbeats, lag', () => {
  let db: TestDatabase;

  beforeAll(async () => {
    db = await createTestDatabase('capture_health');
    await db.query(`
      CREATE TABLE tracked (id int PRIMARY KEY, v text);
      CREATE TABLE keyless (v text);
      CREATE TABLE noisy (id serial PRIMARY KEY, pad text);
    `);
    await installTriggers(db, { excludeTables: ['noisy'] });
    await db.query(`CREATE TABLE untriggered (id int PRIMARY KEY); DROP TRIGGER IF EXISTS _bemi_context ON untriggered;`);
    await db.query(`ALTER TABLE tracked REPLICA IDENTITY FULL`);
  });

  afterAll(() => db.drop());

  it('refuses a role without replication rights, saying how to grant them', async () => {
    const role = `norepl_${uniqueSlot().slice(-6)}`;
    await db.query(`CREATE ROLE ${role} LOGIN PASSWORD 'pw'; GRANT ALL ON SCHEMA public TO ${role}; GRANT ALL ON ALL TABLES IN SCHEMA public TO ${role};`);
    const url = new URL(db.url);
    url.username = role;
    url.password = 'pw';
    const error = await startWorker({ ...db, url: url.toString() }).then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(error).toBeInstanceOf(BemiCaptureSetupError);
    expect((error as Error).message).toContain(`Role "${role}" may not use replication. Run (as a superuser): ALTER ROLE "${role}" REPLICATION;`);
  });

  it('refuses to start without the changes table when it may not create it', async () => {
    const empty = await createTestDatabase('capture_notable');
    try {
      await expect(startWorker(empty, { ensureSchema: false })).rejects.toThrow(/no public\.changes .* table\. Run the migration/);
      expect(await empty.query(`SELECT to_regclass('public.changes') AS t`)).toEqual([{ t: null }]);
    } finally {
      await empty.drop();
    }
  });

  it('refuses to start on a trail made before a column it writes, naming the column and the fix', async () => {
    const older = await createTestDatabase('capture_oldtrail');
    try {
      await older.query(bemiChangesTableSql().up);
      // A trail as versions before context_seq made it: context NOT NULL, no view.
      await older.query(`DROP VIEW changes_with_context; ALTER TABLE changes DROP COLUMN previous_key, DROP COLUMN context_seq, ALTER COLUMN context SET NOT NULL`);
      await expect(startWorker(older, { ensureSchema: false })).rejects.toThrow(
        /changes lacks column\(s\) context_seq, previous_key and has context NOT NULL, which this version's writes need\. Run bemiChangesTableSql\(\)\.up again/,
      );
      // With ensureSchema (the default) the worker adds it itself.
      const { worker } = await startWorker(older);
      await stopAndDropSlot(worker, older);
      expect(await older.query(`SELECT count(*)::int AS n FROM pg_attribute WHERE attrelid = 'changes'::regclass AND attname IN ('previous_key', 'context_seq')`)).toEqual([{ n: 2 }]);
      expect(await older.query(`SELECT attnotnull FROM pg_attribute WHERE attrelid = 'changes'::regclass AND attname = 'context'`)).toEqual([{ attnotnull: false }]);
      expect(await older.query(`SELECT to_regclass('changes_with_context') IS NOT NULL AS v`)).toEqual([{ v: true }]);
    } finally {
      await older.drop();
    }
  });

  it('warns about tables without the trigger, without REPLICA IDENTITY FULL or without a key, and publishes only tracked tables', async () => {
    let worker: BemiCaptureWorker | undefined;
    try {
      const started = await startWorker(db, { excludeTables: ['noisy'] });
      worker = started.worker;
      const warnings = started.logger.text('warn');
      expect(warnings).toMatch(/No nestjs-bemi context trigger on 1 captured table\(s\): public\.untriggered\./);
      expect(warnings).toMatch(/Without REPLICA IDENTITY FULL.* for: public\.capture_sync, public\.keyless, public\.untriggered\./);
      expect(warnings).toMatch(/without a primary key get primary_key NULL: public\.keyless\./);
      const published = await db.query(`SELECT tablename FROM pg_publication_tables WHERE pubname = $1 ORDER BY 1`, [started.slotName]);
      expect(published.map((r) => r.tablename)).toEqual(['capture_sync', 'keyless', 'tracked', 'untriggered']);
    } finally {
      await stopAndDropSlot(worker, db);
    }
  });

  it('adds tables created later to the publication, and never drops its slot', async () => {
    let worker: BemiCaptureWorker | undefined;
    try {
      const started = await startWorker(db, { excludeTables: ['noisy'], publicationRefreshMs: 100 });
      worker = started.worker;
      await db.query(`CREATE TABLE created_later (id int PRIMARY KEY)`);
      await waitFor(async () => (await db.query(`SELECT 1 FROM pg_publication_tables WHERE pubname = $1 AND tablename = 'created_later'`, [started.slotName])).length > 0, 'the publication refresh');
      await db.query(`INSERT INTO created_later VALUES (1)`);
      await syncCapture(db);
      expect(await db.query(`SELECT operation FROM changes WHERE "table" = 'created_later'`)).toEqual([{ operation: 'CREATE' }]);
      await worker.stop();
      expect(await db.query(`SELECT 1 FROM pg_replication_slots WHERE slot_name = $1`, [started.slotName])).toHaveLength(1);
    } finally {
      await stopAndDropSlot(worker, db);
    }
  });

  it('keeps the slot moving while nothing tracked changes (heartbeats), and reports lag', async () => {
    let worker: BemiCaptureWorker | undefined;
    try {
      const started = await startWorker(db, { excludeTables: ['noisy'], heartbeatIntervalMs: 100, progressIntervalMs: 100, lagWarningBytes: 1 });
      worker = started.worker;
      await db.query(`INSERT INTO tracked VALUES (1, 'x')`);
      await syncCapture(db);
      // WAL that has nothing for the worker: an untracked table, and another database.
      await db.query(`INSERT INTO noisy (pad) SELECT repeat('x', 500) FROM generate_series(1, 2000)`);
      await withClient(urlFor('postgres'), (c) => c.query(`CREATE TEMP TABLE t AS SELECT repeat('y', 500) FROM generate_series(1, 2000)`));
      const [{ lsn }] = await db.query(`SELECT pg_current_wal_lsn()::text AS lsn`);
      await waitFor(
        async () => (await db.query(`SELECT confirmed_flush_lsn >= $2::pg_lsn AS ok FROM pg_replication_slots WHERE slot_name = $1`, [started.slotName, lsn]))[0].ok,
        'the slot to confirm past WAL without tracked changes',
      );
      const lag = await worker.lag();
      expect(lag.seconds).toBe(0);
      expect(lag.bytes).toBeLessThan(16 * 1024 * 1024);
      // A burst keeps the worker busy for several progress intervals: the lag is logged.
      await db.query(`INSERT INTO tracked SELECT g, 'burst' FROM generate_series(2, 20001) g`);
      await waitFor(() => /Capture is falling behind: lag \d+ bytes/.test(started.logger.text('warn')), 'a lag warning above the 1-byte threshold');
    } finally {
      await stopAndDropSlot(worker, db);
    }
  });

  it('refuses a server whose wal_level is not logical', async () => {
    const dataDir = mkdtempSync(join(tmpdir(), 'bemi-replica-'));
    const server = await spawnPostgres(dataDir, await freePort(), ['-c', 'wal_level=replica']);
    try {
      const other: TestDatabase = { name: 'postgres', url: server.url, query: async () => [], drop: async () => undefined };
      await expect(startWorker(other)).rejects.toThrow(
        /wal_level is "replica" on the source, so its changes cannot be streamed\. Set wal_level = logical .* and restart PostgreSQL\./,
      );
    } finally {
      server.run.child.kill('SIGTERM');
      await server.run.exited;
      rmSync(dataDir, { recursive: true, force: true });
    }
  }, 120_000);
});
