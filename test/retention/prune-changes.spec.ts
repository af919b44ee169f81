import { pruneChanges } from '../../lib/retention/prune-changes';
import { createTestDatabase, withClient, type TestDatabase } from '../support/database';
import { RecordingLogger } from '../support/recording-logger';
import { createChangesTable } from '../support/changes-table';
import { PRUNE_INDEX, seedChanges, series } from './support';

const NOW = '2026-01-01T00:00:00.000Z';
const DAY = 86_400_000;
/** NOW minus one day: the cutoff of maxAge '1d'. */
const CUTOFF = '2025-12-31T00:00:00.000Z';

describe('pruneChanges', () => {
  let db: TestDatabase;

  beforeAll(async () => {
    db = await createTestDatabase('prune');
  });

  afterAll(() => db?.drop());

  beforeEach(async () => {
    await db.query(`DROP TABLE IF EXISTS changes, prune_log, _bemi_retention_horizon CASCADE`);
    await createChangesTable(db);
    await db.query(PRUNE_INDEX);
  });

  const remaining = async () =>
    (await db.query<{ table: string; at: string }>(`SELECT "table", to_char(committed_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US') AS at FROM changes ORDER BY "table", committed_at`)).map(
      (r) => `${r.table}@${r.at}`,
    );

  it('deletes exactly the changes committed before the cutoff, to the microsecond', async () => {
    await db.query(
      `INSERT INTO changes (database, schema, "table", operation, committed_at, queued_at, transaction_id, position, commit_position, seq)
       SELECT 'd', 'public', 'todo', 'CREATE', at, at, 1, 1, row_number() OVER (), 0
       FROM unnest(ARRAY[
         timestamptz '${CUTOFF}' - interval '400 days',
         timestamptz '${CUTOFF}' - interval '1 millisecond',
         timestamptz '${CUTOFF}' - interval '1 microsecond',
         timestamptz '${CUTOFF}',
         timestamptz '${CUTOFF}' + interval '1 microsecond',
         timestamptz '${NOW}'
       ]) AS at`,
    );
    const result = await pruneChanges(db.url, { maxAge: '1d', now: NOW });
    expect(await remaining()).toEqual(['todo@2025-12-31T00:00:00.000000', 'todo@2025-12-31T00:00:00.000001', 'todo@2026-01-01T00:00:00.000000']);
    expect(result).toMatchObject({ dryRun: false, rows: 3, batches: 1, partitions: [], stopped: false });
    expect(result.tables).toEqual([{ table: 'todo', cutoff: expect.stringMatching(/^2025-12-31 00:00:00\+00/), rows: 3, batches: 1 }]);
    expect(result.skipped).toBeUndefined();
    // The horizon: the latest commit time deleted, written by the deleting statement itself.
    expect(await db.query(`SELECT "table", to_char(horizon AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US') AS h FROM _bemi_retention_horizon`)).toEqual([
      { table: 'todo', h: '2025-12-30T23:59:59.999999' },
    ]);
  });

  it('records a horizon only for what it deleted, never lowers one, and not in a dry run', async () => {
    await seedChanges(db, [...series('todo', 3, '2025-12-20T00:00:00Z'), ...series('other', 1, '2025-12-31T12:00:00Z')]);
    await pruneChanges(db.url, { maxAge: '1d', now: NOW, dryRun: true });
    expect(await db.query(`SELECT * FROM _bemi_retention_horizon`)).toEqual([]);
    await pruneChanges(db.url, { maxAge: '1d', now: NOW });
    await pruneChanges(db.url, { maxAge: '20d', now: NOW });
    // A late, older change (a backfill) pruned afterwards leaves the later horizon in place.
    await seedChanges(db, series('todo', 1, '2025-12-01T00:00:00Z'));
    expect((await pruneChanges(db.url, { maxAge: '1d', now: NOW })).rows).toBe(1);
    expect(await db.query(`SELECT "table", horizon FROM _bemi_retention_horizon`)).toEqual([{ table: 'todo', horizon: new Date('2025-12-20T00:00:00Z') }]);
  });

  it('creates the horizon table on a trail made before it existed', async () => {
    await db.query(`DROP TABLE IF EXISTS _bemi_retention_horizon`);
    await seedChanges(db, series('todo', 1, '2025-12-01T00:00:00Z'));
    await pruneChanges(db.url, { maxAge: '1d', now: NOW });
    expect(await db.query(`SELECT "table" FROM _bemi_retention_horizon`)).toEqual([{ table: 'todo' }]);
  });

  it('measures age from the database clock by default', async () => {
    await seedChanges(db, [
      { table: 'todo', committedAt: new Date(Date.now() - 2 * DAY).toISOString() },
      { table: 'todo', committedAt: new Date(Date.now() - DAY / 2).toISOString() },
    ]);
    expect((await pruneChanges(db.url, { maxAge: '1d' })).rows).toBe(1);
    expect(await db.query(`SELECT count(*)::int AS n FROM changes`)).toEqual([{ n: 1 }]);
  });

  it('perTable overrides maxAge; null keeps a table forever; tables without an age are kept', async () => {
    const old = '2025-12-20T00:00:00Z'; // 12 days before NOW
    const recent = '2025-12-29T00:00:00Z'; // 3 days before NOW
    await seedChanges(db, [...series('todo', 3, old), ...series('todo', 2, recent), ...series('orders', 3, old), ...series('orders', 2, recent), ...series('invoices', 4, old)]);
    const result = await pruneChanges(db.url, { maxAge: '2d', perTable: { orders: '30d', invoices: null }, now: NOW });
    expect(result.rows).toBe(5);
    expect(await db.query(`SELECT "table", count(*)::int AS n FROM changes GROUP BY 1 ORDER BY 1`)).toEqual([
      { table: 'invoices', n: 4 },
      { table: 'orders', n: 5 },
    ]);
    expect(result.tables.map((t) => [t.table, t.rows])).toEqual([
      ['orders', 0],
      ['todo', 5],
    ]);

    // Only perTable ages: the other tables are not touched.
    const only = await pruneChanges(db.url, { perTable: { orders: '5d' }, now: NOW });
    expect(only.tables.map((t) => [t.table, t.rows])).toEqual([['orders', 3]]);
    expect(await db.query(`SELECT "table", count(*)::int AS n FROM changes GROUP BY 1 ORDER BY 1`)).toEqual([
      { table: 'invoices', n: 4 },
      { table: 'orders', n: 2 },
    ]);
  });

  it('a dry run counts what would go and deletes nothing', async () => {
    await seedChanges(db, [...series('todo', 7, '2025-12-01T00:00:00Z'), ...series('todo', 2, NOW), ...series('orders', 4, '2025-11-01T00:00:00Z')]);
    const logger = new RecordingLogger();
    const dry = await pruneChanges(db.url, { maxAge: '1d', perTable: { orders: null }, dryRun: true, now: NOW, logger, batchSize: 2 });
    expect(dry).toMatchObject({ dryRun: true, rows: 7, batches: 0 });
    expect(dry.tables.map((t) => [t.table, t.rows])).toEqual([['todo', 7]]);
    expect(logger.messages('log')).toEqual([expect.stringMatching(/^Would prune 7 changes of "todo" committed before 2025-12-31 00:00:00\+00/)]);
    expect(await db.query(`SELECT count(*)::int AS n FROM changes`)).toEqual([{ n: 13 }]);
    // The real run deletes what the dry run counted.
    expect((await pruneChanges(db.url, { maxAge: '1d', perTable: { orders: null }, now: NOW })).rows).toBe(7);
  });

  it('deletes in bounded batches, each its own transaction, with a log line per batch', async () => {
    await seedChanges(db, [...series('todo', 2500, '2025-06-01T00:00:00Z'), ...series('todo', 10, NOW)]);
    // Observe the deletes from the database side: one row per DELETE statement, with its transaction.
    await db.query(`CREATE TABLE prune_log (xid bigint, deleted int, at timestamptz DEFAULT clock_timestamp())`);
    await db.query(`CREATE FUNCTION log_prune() RETURNS trigger LANGUAGE plpgsql AS $$
      BEGIN INSERT INTO prune_log (xid, deleted) SELECT txid_current(), count(*) FROM old_rows; RETURN NULL; END $$`);
    await db.query(`CREATE TRIGGER log_prune AFTER DELETE ON changes REFERENCING OLD TABLE AS old_rows FOR EACH STATEMENT EXECUTE FUNCTION log_prune()`);
    const logger = new RecordingLogger();
    const result = await pruneChanges(db.url, { maxAge: '1d', now: NOW, batchSize: 1000, logger });
    expect(result).toMatchObject({ rows: 2500, batches: 3 });
    const log = await db.query<{ xid: string; deleted: number }>(`SELECT xid, deleted FROM prune_log ORDER BY at`);
    expect(log.map((l) => l.deleted)).toEqual([1000, 1000, 500]);
    expect(new Set(log.map((l) => l.xid)).size).toBe(3);
    expect(logger.messages('log')).toHaveLength(3);
    expect(logger.messages('log')[0]).toMatch(/^Pruned 1000 changes of "todo" committed before 2025-12-31 00:00:00\+00 in \d+ ms \(batch 1, 1000 so far\)\.$/);
    expect(logger.messages('log')[2]).toMatch(/^Pruned 500 changes of "todo" .* \(batch 3, 2500 so far\)\.$/);
    expect(await db.query(`SELECT count(*)::int AS n FROM changes`)).toEqual([{ n: 10 }]);
  });

  it('batches move on past changes that share one committed_at', async () => {
    await seedChanges(db, Array.from({ length: 25 }, () => ({ table: 'todo', committedAt: '2025-01-01T00:00:00Z' })));
    const result = await pruneChanges(db.url, { maxAge: '1d', now: NOW, batchSize: 10 });
    expect(result).toMatchObject({ rows: 25, batches: 3 });
    expect(await db.query(`SELECT count(*)::int AS n FROM changes`)).toEqual([{ n: 0 }]);
  });

  it('warns, with the index to create, when no index serves ("table", committed_at)', async () => {
    await db.query(`DROP INDEX _bemi_changes_table_committed_at`);
    await seedChanges(db, series('todo', 3, '2025-01-01T00:00:00Z'));
    const logger = new RecordingLogger();
    expect((await pruneChanges(db.url, { maxAge: '1d', now: NOW, logger })).rows).toBe(3);
    expect(logger.messages('warn')).toEqual([expect.stringMatching(/has no index on \("table", committed_at\).*CREATE INDEX CONCURRENTLY _bemi_changes_table_committed_at ON "public"\."changes" \("table", committed_at\);$/)]);
  });

  it('skips the run while another run holds the lock', async () => {
    await seedChanges(db, series('todo', 3, '2025-01-01T00:00:00Z'));
    await withClient(db.url, async (c) => {
      await c.query(`SELECT pg_advisory_lock(hashtext('nestjs-bemi:prune:public.changes'))`);
      const logger = new RecordingLogger();
      const result = await pruneChanges(db.url, { maxAge: '1d', now: NOW, logger });
      expect(result).toMatchObject({ skipped: 'locked', rows: 0 });
      expect(logger.messages('warn')).toEqual(['Another pruning run holds the lock on "public"."changes"; this run is skipped.']);
    });
    expect((await pruneChanges(db.url, { maxAge: '1d', now: NOW })).rows).toBe(3);
  });

  it('finds the table in another schema and says what to check when it is missing', async () => {
    await expect(pruneChanges(db.url, { maxAge: '1d', schema: 'audit' })).rejects.toThrow(
      'No table "audit"."changes": check the schema and table options (capture "schema", history "table") or start capture once to create it.',
    );
    await db.query(`CREATE SCHEMA audit; CREATE TABLE audit.trail (LIKE changes INCLUDING ALL)`);
    await seedChanges(db, series('todo', 2, '2025-01-01T00:00:00Z'), 'audit.trail');
    expect((await pruneChanges(db.url, { maxAge: '1d', schema: 'audit', table: 'trail', now: NOW })).rows).toBe(2);
    await db.query(`DROP SCHEMA audit CASCADE`);
  });

  it('rejects bad ages and batch sizes before connecting', async () => {
    await expect(pruneChanges('postgres://nowhere.invalid/x', { maxAge: '1y' })).rejects.toThrow(/Retention option "maxAge" is not a duration/);
    await expect(pruneChanges('postgres://nowhere.invalid/x', {})).rejects.toThrow(/Retention option "maxAge" is missing/);
    await expect(pruneChanges('postgres://nowhere.invalid/x', { maxAge: '1d', batchSize: 0 })).rejects.toThrow(/Retention option "batchSize"/);
  });

  it('uses an index for every batch on a large trail (query plan)', async () => {
    await db.query(
      `INSERT INTO changes (database, schema, "table", operation, committed_at, queued_at, transaction_id, position, commit_position, seq)
       SELECT 'd', 'public', 't' || (i % 5), 'CREATE', timestamptz '${NOW}' - i * interval '1 minute', now(), 1, i, i, 0 FROM generate_series(1, 50000) i`,
    );
    await db.query(`ANALYZE changes`);
    const { retentionSql } = await import('../../lib/retention/retention.sql');
    const sql = retentionSql('public', 'changes');
    const plan = await withClient(db.url, async (c) => {
      await c.query(`PREPARE b(text, timestamptz, timestamptz, int) AS ${sql.deleteBatch(true)}`);
      await c.query('BEGIN');
      const { rows } = await c.query(`EXPLAIN (FORMAT JSON) EXECUTE b('t1', '-infinity', '${CUTOFF}', 1000)`);
      await c.query('ROLLBACK');
      return JSON.stringify(rows[0]['QUERY PLAN']);
    });
    expect(plan).toContain('"Index Name":"_bemi_changes_table_committed_at"');
    expect(plan).toContain('"Node Type":"Tid Scan"');
    expect(plan).not.toContain('"Node Type":"Seq Scan"');
  });
});
