import type { BemiCaptureWorker } from '../../lib/capture/capture.worker';
import { newTablePublisherSql, publisherName } from '../../lib/capture/new-table-publisher';
import { createTestDatabase, withClient, type TestDatabase } from '../support/database';
import { changesOf, createCaptureDatabase, dropCaptureDatabase, inTransaction, startWorker, stopAndDropSlot, syncCapture, uniqueSlot, waitFor, withContext } from './support/capture-helpers';

/** Every (commit_position, seq) once, and the count of a table's rows. */
async function countsOf(db: TestDatabase, table: string): Promise<{ rows: number; distinct: number }> {
  const [r] = await db.query(`SELECT count(*)::int AS rows, count(DISTINCT (commit_position, seq))::int AS distinct FROM changes WHERE "table" = $1`, [table]);
  return r;
}

describe('capture: tables created while the worker runs (real PostgreSQL)', () => {
  let db: TestDatabase;
  let worker: BemiCaptureWorker;
  let slotName: string;

  beforeAll(async () => {
    db = await createCaptureDatabase('capture_new_tables', `CREATE SCHEMA other`);
    // No periodic refresh at all: whatever is captured from a new table got there through the event trigger.
    ({ worker, slotName } = await startWorker(db, { publicationRefreshMs: 0, excludeTables: ['skipped_by_option'] }));
  });

  afterAll(() => dropCaptureDatabase(worker, db));

  it('installs its event trigger and reports it', () => {
    expect(worker.status().newTables).toBe('event-trigger');
  });

  it('captures every row written right after CREATE TABLE, exactly once, with its context', async () => {
    await db.query(`CREATE TABLE born_live (id serial PRIMARY KEY, v text)`);
    await db.query(withContext({ userId: 1 }, `INSERT INTO born_live (v) SELECT 'r' || g FROM generate_series(1, 500) g`));
    await db.query(withContext({ userId: 2 }, `UPDATE born_live SET v = v || '!' WHERE id <= 10`));
    await db.query(`DELETE FROM born_live WHERE id = 500`);
    await syncCapture(db);
    expect(await countsOf(db, 'born_live')).toEqual({ rows: 511, distinct: 511 });
    const byOp = await db.query(`SELECT operation, context, count(*)::int AS n FROM changes_with_context WHERE "table" = 'born_live' GROUP BY 1, 2 ORDER BY 1`);
    expect(byOp).toEqual([
      { operation: 'CREATE', context: { userId: 1 }, n: 500 },
      { operation: 'DELETE', context: {}, n: 1 },
      { operation: 'UPDATE', context: { userId: 2 }, n: 10 },
    ]);
  });

  it('captures rows written in the very transaction that creates the table', async () => {
    await inTransaction(db.url, [
      `CREATE TABLE born_in_tx (id int PRIMARY KEY, v text)`,
      withContext({ job: 'seed' }, `INSERT INTO born_in_tx SELECT g, 'x' FROM generate_series(1, 100) g`),
      withContext({ job: 'fix' }, `UPDATE born_in_tx SET v = 'y' WHERE id = 1`),
    ]);
    await syncCapture(db);
    const rows = await changesOf(db, 'born_in_tx');
    expect(rows).toHaveLength(101);
    expect(rows.slice(0, 100).every((r) => r.operation === 'CREATE' && r.context.job === 'seed')).toBe(true);
    expect(rows[100]).toMatchObject({ operation: 'UPDATE', primary_key: '1', context: { job: 'fix' }, after: { id: 1, v: 'y' } });
    expect(new Set(rows.map((r) => r.commit_position)).size).toBe(1);
    expect(rows.map((r) => r.seq)).toEqual([...Array(101).keys()]);
  });

  it('keeps up while tables are created and written one after another under load', async () => {
    // Concurrent sessions create and fill tables while another keeps writing to an existing one.
    await db.query(`CREATE TABLE steady (id serial PRIMARY KEY, n int)`);
    const names = Array.from({ length: 6 }, (_, i) => `burst_${i}`);
    await Promise.all([
      ...names.map((name, i) =>
        withClient(db.url, async (c) => {
          await c.query(`CREATE TABLE ${name} (id int PRIMARY KEY, n int)`);
          for (let k = 0; k < 5; k++) await c.query(withContext({ table: name, k }, `INSERT INTO ${name} SELECT g, ${i} FROM generate_series(${k * 20 + 1}, ${k * 20 + 20}) g`));
        }),
      ),
      withClient(db.url, async (c) => {
        for (let k = 0; k < 20; k++) await c.query(`INSERT INTO steady (n) SELECT g FROM generate_series(1, 50) g`);
      }),
    ]);
    await syncCapture(db);
    for (const name of names) {
      expect(await countsOf(db, name)).toEqual({ rows: 100, distinct: 100 });
      const contexts = await db.query(`SELECT DISTINCT context->>'table' AS t FROM changes_with_context WHERE "table" = $1`, [name]);
      expect(contexts).toEqual([{ t: name }]);
    }
    expect(await countsOf(db, 'steady')).toEqual({ rows: 1000, distinct: 1000 });
  });

  it('follows the tracking rules: never changes, excluded, _bemi*, unlogged, temporary, untracked schemas or partitions', async () => {
    await db.query(`
      CREATE TABLE other.changes (id int);
      CREATE TABLE skipped_by_option (id int PRIMARY KEY);
      CREATE TABLE _bemi_private (id int PRIMARY KEY);
      CREATE UNLOGGED TABLE scratch (id int PRIMARY KEY);
      CREATE TABLE other.elsewhere (id int PRIMARY KEY);
      CREATE TABLE parted (id int, at date, PRIMARY KEY (id, at)) PARTITION BY RANGE (at);
      CREATE TABLE parted_2024 PARTITION OF parted FOR VALUES FROM ('2024-01-01') TO ('2025-01-01');
    `);
    await withClient(db.url, (c) => c.query(`CREATE TEMP TABLE tmp_rows (id int); INSERT INTO tmp_rows VALUES (1)`));
    const published = await db.query(`SELECT schemaname || '.' || tablename AS t FROM pg_publication_tables WHERE pubname = $1 ORDER BY 1`, [slotName]);
    expect(published.map((r) => r.t)).toEqual(['public.born_in_tx', 'public.born_live', 'public.burst_0', 'public.burst_1', 'public.burst_2', 'public.burst_3', 'public.burst_4', 'public.burst_5', 'public.capture_sync', 'public.parted', 'public.steady']);
    await db.query(`INSERT INTO parted VALUES (1, '2024-05-01')`);
    await syncCapture(db);
    expect((await changesOf(db, 'parted')).map((r) => [r.table, r.primary_key])).toEqual([['parted', '[1,"2024-05-01"]']]);
  });

  it('adds a table moved into a tracked schema or made logged, and never fails the DDL', async () => {
    await db.query(`CREATE TABLE other.moved (id int PRIMARY KEY); ALTER TABLE other.moved SET SCHEMA public; INSERT INTO moved VALUES (1)`);
    await db.query(`ALTER TABLE scratch SET LOGGED; INSERT INTO scratch VALUES (7)`);
    await syncCapture(db);
    expect((await changesOf(db, 'moved')).map((r) => r.primary_key)).toEqual(['1']);
    expect((await changesOf(db, 'scratch')).map((r) => r.primary_key)).toEqual(['7']);
    // With its publication gone, the trigger steps aside: DDL goes on as usual. (One transaction,
    // so that the running worker never finds its publication missing and re-creates it meanwhile.)
    await db.query(`DROP PUBLICATION ${slotName}; CREATE TABLE after_pub_gone (id int PRIMARY KEY); CREATE PUBLICATION ${slotName} FOR TABLE capture_sync`);
    expect(await db.query(`SELECT tablename FROM pg_publication_tables WHERE pubname = $1`, [slotName])).toEqual([{ tablename: 'capture_sync' }]);
  });

  it('CREATE TABLE AS: the rows it loads precede the publication (documented limit); later rows are captured', async () => {
    await db.query(`CREATE TABLE copied AS SELECT g AS id FROM generate_series(1, 3) g`);
    await db.query(`INSERT INTO copied VALUES (4)`);
    await syncCapture(db);
    expect((await changesOf(db, 'copied')).map((r) => r.after.id)).toEqual([4]);
  });

  it('drops cleanly with its SQL down', async () => {
    const options = { publicationName: 'p', schemas: ['public'], excludeTables: [] };
    await db.query(newTablePublisherSql(options).up);
    expect(await db.query(`SELECT evtname FROM pg_event_trigger WHERE evtname = $1`, [publisherName('p')])).toHaveLength(1);
    await db.query(newTablePublisherSql(options).down);
    await db.query(newTablePublisherSql(options).down); // idempotent
    expect(await db.query(`SELECT 1 FROM pg_event_trigger WHERE evtname = $1`, [publisherName('p')])).toEqual([]);
    expect(await db.query(`SELECT 1 FROM pg_proc WHERE proname = $1`, [publisherName('p')])).toEqual([]);
    expect(publisherName('x'.repeat(63))).toMatch(/^_bemi_publish_[0-9a-f]{24}$/);
  });
});

describe('capture: new tables under a role that may not create event triggers', () => {
  let db: TestDatabase;

  beforeAll(async () => {
    db = await createTestDatabase('capture_new_tables_role');
  });

  afterAll(() => db.drop());

  it('warns at startup and falls back to the periodic refresh', async () => {
    const role = `capt_${uniqueSlot().slice(-8)}`;
    await db.query(`CREATE ROLE ${role} LOGIN REPLICATION PASSWORD 'pw'; GRANT CREATE ON DATABASE "${db.name}" TO ${role}; ALTER SCHEMA public OWNER TO ${role};`);
    const url = new URL(db.url);
    url.username = role;
    url.password = 'pw';
    const asRole: TestDatabase = { ...db, url: url.toString(), query: (sql, params) => withClient(url.toString(), async (c) => (await c.query(sql, params as unknown[])).rows) };
    await asRole.query(`CREATE TABLE capture_sync (id serial PRIMARY KEY, token text NOT NULL)`);
    let worker: BemiCaptureWorker | undefined;
    try {
      const started = await startWorker(asRole, { publicationRefreshMs: 100 });
      worker = started.worker;
      expect(worker.status().newTables).toBe('refresh');
      expect(started.logger.text('warn')).toMatch(
        new RegExp(`Could not install the event trigger that adds new tables to publication "${started.slotName}" at once \\(.*\\)\\. Tables created while the worker runs join it only at the next refresh \\(every 100 ms\\): rows written to them before that are NOT captured\\.`),
      );
      await asRole.query(`CREATE TABLE later (id int PRIMARY KEY)`);
      await waitFor(async () => (await db.query(`SELECT 1 FROM pg_publication_tables WHERE pubname = $1 AND tablename = 'later'`, [started.slotName])).length > 0, 'the publication refresh');
      await asRole.query(`INSERT INTO later VALUES (1)`);
      await syncCapture(asRole);
      expect(await db.query(`SELECT primary_key FROM changes WHERE "table" = 'later'`)).toEqual([{ primary_key: '1' }]);
    } finally {
      await stopAndDropSlot(worker, db);
    }
  });
});
