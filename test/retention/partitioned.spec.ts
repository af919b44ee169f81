import { Client } from 'pg';
import { ChangesWriter } from '../../lib/capture/changes-writer';
import type { ChangeRow } from '../../lib/capture/pgoutput-stitcher';
import { pruneChanges } from '../../lib/retention/prune-changes';
import { installTriggers, startWorker, stopAndDropSlot, syncCapture } from '../capture/support/capture-helpers';
import type { BemiCaptureWorker } from '../../lib/capture/capture.worker';
import { createTestDatabase, type TestDatabase } from '../support/database';
import { RecordingLogger } from '../support/recording-logger';
import { partitionedChangesDdl, seedChanges, series } from './support';

const NOW = '2025-12-15T00:00:00.000Z';

/** Months 2025-09 .. 2026-12: old ones to prune and the current ones capture writes into. */
const MONTHS = Array.from({ length: 16 }, (_, i) => {
  const m = 8 + i; // 0-based month index from 2025-01
  return `${2025 + Math.floor(m / 12)}-${String((m % 12) + 1).padStart(2, '0')}`;
});

describe('pruning a changes table partitioned by month of committed_at', () => {
  let db: TestDatabase;

  beforeAll(async () => {
    db = await createTestDatabase('prune_part');
  });

  afterAll(() => db?.drop());

  beforeEach(async () => {
    await db.query(`DROP TABLE IF EXISTS changes CASCADE`);
    await db.query(partitionedChangesDdl(MONTHS));
  });

  const partitionExists = async (name: string) => (await db.query(`SELECT to_regclass($1) IS NOT NULL AS e`, [name]))[0].e as boolean;
  const counts = async () => db.query(`SELECT "table", count(*)::int AS n FROM changes GROUP BY 1 ORDER BY 1`);

  const horizons = async () =>
    (await db.query<{ table: string; horizon: Date }>(`SELECT "table", horizon FROM _bemi_retention_horizon ORDER BY "table"`)).map((r) => ({ table: r.table, horizon: r.horizon.toISOString() }));

  it('drops partitions wholly older than the cutoff and deletes the rest in batches; a dry run counts the same', async () => {
    // maxAge 30d from NOW: cutoff 2025-11-15, so October goes whole and November in part.
    await seedChanges(db, [
      ...series('todo', 5, '2025-10-20T00:00:00Z'),
      ...series('orders', 3, '2025-10-31T23:59:59Z'),
      ...series('todo', 4, '2025-11-14T23:59:59Z'),
      ...series('todo', 3, '2025-11-20T00:00:00Z'),
      ...series('todo', 2, '2025-12-10T00:00:00Z'),
    ]);
    const dryLogger = new RecordingLogger();
    const dry = await pruneChanges(db.url, { maxAge: '30d', now: NOW, dryRun: true, batchSize: 2, logger: dryLogger });
    // September is empty and wholly older too: it goes as well.
    expect(dry).toMatchObject({
      dryRun: true,
      rows: 12,
      partitions: [
        { name: 'public.changes_2025_09', rows: 0, upperBound: '2025-10-01 00:00:00+00' },
        { name: 'public.changes_2025_10', rows: 8, upperBound: '2025-11-01 00:00:00+00' },
      ],
    });
    expect(dry.tables.map((t) => [t.table, t.rows])).toEqual([
      ['orders', 0],
      ['todo', 4],
    ]);
    expect(dryLogger.messages('log')[1]).toMatch(/^Would drop partition public\.changes_2025_10 \(committed_at before 2025-11-01 00:00:00\+00\): 8 rows/);
    expect(await partitionExists('changes_2025_10')).toBe(true);
    expect(await horizons()).toEqual([]);
    expect(await counts()).toEqual([
      { table: 'orders', n: 3 },
      { table: 'todo', n: 14 },
    ]);

    const logger = new RecordingLogger();
    const result = await pruneChanges(db.url, { maxAge: '30d', now: NOW, batchSize: 2, logger });
    expect(result).toMatchObject({ dryRun: false, rows: 12, batches: 2, partitions: [{ name: 'public.changes_2025_09', rows: 0 }, { name: 'public.changes_2025_10', rows: 8 }] });
    expect(logger.messages('log')[1]).toMatch(/^Dropped partition public\.changes_2025_10 .*: 8 rows/);
    expect(logger.messages('log').slice(2)).toEqual([expect.stringMatching(/^Pruned 2 changes of "todo" .*batch 1/), expect.stringMatching(/^Pruned 2 changes of "todo" .*batch 2/)]);
    expect(logger.messages('warn')).toEqual([]);
    expect(await partitionExists('changes_2025_10')).toBe(false);
    expect(await counts()).toEqual([{ table: 'todo', n: 5 }]);
    expect((await db.query(`SELECT min(committed_at) AS m FROM changes`))[0].m.toISOString()).toBe('2025-11-19T23:59:58.000Z');
    // The latest commit time pruned per table: the dropped partition's for orders, the batches' for todo.
    expect(await horizons()).toEqual([
      { table: 'orders', horizon: '2025-10-31T23:59:59.000Z' },
      { table: 'todo', horizon: '2025-11-14T23:59:59.000Z' },
    ]);
  });

  it('keeps a partition that holds changes of a table kept longer, and deletes its other rows in batches', async () => {
    await seedChanges(db, [...series('todo', 5, '2025-10-20T00:00:00Z'), ...series('invoices', 2, '2025-10-21T00:00:00Z'), ...series('todo', 1, '2025-12-01T00:00:00Z')]);
    const result = await pruneChanges(db.url, { maxAge: '30d', perTable: { invoices: null }, now: NOW });
    expect(result).toMatchObject({ rows: 5, partitions: [{ name: 'public.changes_2025_09', rows: 0 }] });
    expect(await partitionExists('changes_2025_10')).toBe(true);
    expect(await counts()).toEqual([
      { table: 'invoices', n: 2 },
      { table: 'todo', n: 1 },
    ]);
    // Once invoices may go too, the partition is dropped whole.
    const later = await pruneChanges(db.url, { maxAge: '30d', perTable: { invoices: '40d' }, now: NOW });
    expect(later.partitions.map((p) => [p.name, p.rows])).toEqual([['public.changes_2025_10', 2]]);
  });

  describe('with the capture worker writing into it', () => {
    let worker: BemiCaptureWorker | undefined;

    afterEach(async () => {
      await stopAndDropSlot(worker, db);
      worker = undefined;
    });

    it('capture stores every change exactly once while pruning drops and deletes old ones', async () => {
      await installTriggers(db);
      await db.query(`DROP TABLE IF EXISTS items; CREATE TABLE items (id serial PRIMARY KEY, n int NOT NULL)`);
      await db.query(`ALTER TABLE items REPLICA IDENTITY FULL`);
      const started = await startWorker(db, { batchSize: 50 });
      worker = started.worker;
      // Old rows: a whole partition a year back, and part of the month straddling the cutoff.
      const now = new Date();
      const cutoff = new Date(now.getTime() - 365 * 86_400_000);
      const straddling = `${cutoff.getUTCFullYear()}-${String(cutoff.getUTCMonth() + 1).padStart(2, '0')}`;
      const monthStart = Date.parse(`${straddling}-01T00:00:00Z`);
      const older = new Date(monthStart - 86_400_000).toISOString(); // last day of the month before
      await seedChanges(db, [...series('todo', 400, older), ...series('todo', 300, new Date(Math.max(monthStart + 1000 * 300, cutoff.getTime() - 3_600_000)).toISOString())]);
      expect(await db.query(`SELECT count(*)::int AS n FROM changes WHERE committed_at < now() - interval '365 days'`)).toEqual([{ n: 700 }]);

      const writes = (async () => {
        for (let i = 0; i < 30; i++) await db.query(`INSERT INTO items (n) SELECT g FROM generate_series(1, 20) g`);
      })();
      const logger = new RecordingLogger();
      const [result] = await Promise.all([pruneChanges(db.url, { maxAge: '365d', batchSize: 100, logger }), writes]);
      await syncCapture(db, 120_000);

      expect(result.rows).toBe(700);
      expect(result.partitions.length).toBeGreaterThanOrEqual(1);
      expect(await db.query(`SELECT count(*)::int AS n FROM changes WHERE committed_at < now() - interval '365 days'`)).toEqual([{ n: 0 }]);
      expect(await db.query(`SELECT count(*)::int AS n, count(DISTINCT after->>'id')::int AS ids FROM changes WHERE "table" = 'items'`)).toEqual([{ n: 600, ids: 600 }]);
      expect(started.logger.text('error')).toBe('');
    }, 240_000); // liveness bound: creating a slot waits for other test files' long transactions

    // The writer's fallback after a duplicate (re-delivery after a crash) must not name a conflict
    // target: on a partitioned table the unique constraint has to include committed_at, and a
    // target of (commit_position, seq) would match no constraint (42P10).
    it('re-delivered changes are skipped on a partitioned table too', async () => {
      const client = new Client({ connectionString: db.url });
      await client.connect();
      try {
        await db.query(`CREATE TABLE IF NOT EXISTS _bemi_capture_state (slot_name text PRIMARY KEY, database text NOT NULL, started_at timestamptz NOT NULL DEFAULT now(), last_commit_position bigint, last_commit_end_position bigint, last_committed_at timestamptz, updated_at timestamptz)`);
        const writer = new ChangesWriter(client, 'public', 'none');
        const row = (seq: number): ChangeRow => ({
          primaryKey: String(seq), previousKey: null, before: '{}', after: '{}', context: '{}', role: null, sessionRole: null, database: db.name, schema: 'public', table: 'todo', operation: 'CREATE',
          committedAt: '2025-12-01T00:00:00Z', queuedAt: '2025-12-01T00:00:00Z', transactionId: '7', position: '900', commitPosition: '900', seq,
        });
        await writer.insert(writer.prepare([row(0), row(1)]));
        await writer.commit(undefined);
        expect(await writer.insert(writer.prepare([row(1), row(2)]))).toBe(1);
        await writer.commit(undefined);
      } finally {
        await client.end();
      }
      expect(await db.query(`SELECT count(*)::int AS n FROM changes WHERE commit_position = 900`)).toEqual([{ n: 3 }]);
    });

    it('ON CONFLICT DO NOTHING without a target (the fix the writer needs) skips duplicates on a partitioned table', async () => {
      const insert = `INSERT INTO changes (database, schema, "table", operation, committed_at, queued_at, transaction_id, position, commit_position, seq)
        VALUES ('d', 'public', 'todo', 'CREATE', '2025-12-01T00:00:00Z', now(), 1, 901, 901, 0) ON CONFLICT DO NOTHING`;
      await db.query(insert);
      await db.query(insert);
      expect(await db.query(`SELECT count(*)::int AS n FROM changes WHERE commit_position = 901`)).toEqual([{ n: 1 }]);
      await expect(db.query(insert.replace('ON CONFLICT DO NOTHING', 'ON CONFLICT (commit_position, seq) DO NOTHING'))).rejects.toThrow(
        /there is no unique or exclusion constraint matching the ON CONFLICT specification/,
      );
    });
  });
});
