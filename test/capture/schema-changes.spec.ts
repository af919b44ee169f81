import type { BemiCaptureWorker } from '../../lib/capture/capture.worker';
import { createTestDatabase, type TestDatabase } from '../support/database';
import { captureOptions, changesOf, installTriggers, stopAndDropSlot, syncCapture, withContext } from './support/capture-helpers';
import { BemiCaptureWorker as Worker } from '../../lib/capture/capture.worker';
import { RecordingLogger } from '../support/recording-logger';

/** One DDL a migration may run, with writes before and after it, and what the trail must say. */
interface SchemaCase {
  name: string;
  /** SQL with `$t` for the case's table. Every table is REPLICA IDENTITY FULL, as the migration sets it. */
  setup?: string[];
  before: string[];
  ddl: string[];
  after: string[];
  /** [operation, table (`$t`), primary key, before, after] per change, in commit order. */
  expected: Array<[string, string, string | null, object, object]>;
}

const CASES: SchemaCase[] = [
  {
    name: 'add_column',
    setup: ['CREATE TABLE $t (id int PRIMARY KEY, n text)'],
    before: [`INSERT INTO $t VALUES (1, 'a')`],
    ddl: ['ALTER TABLE $t ADD COLUMN extra int DEFAULT 5'],
    after: [`UPDATE $t SET n = 'b' WHERE id = 1`, `INSERT INTO $t VALUES (2, 'c', 7)`],
    expected: [
      ['CREATE', '$t', '1', {}, { id: 1, n: 'a' }],
      ['UPDATE', '$t', '1', { id: 1, n: 'a', extra: 5 }, { id: 1, n: 'b', extra: 5 }],
      ['CREATE', '$t', '2', {}, { id: 2, n: 'c', extra: 7 }],
    ],
  },
  {
    name: 'drop_column',
    setup: ['CREATE TABLE $t (id int PRIMARY KEY, n text, gone text)'],
    before: [`INSERT INTO $t VALUES (1, 'a', 'x')`],
    ddl: ['ALTER TABLE $t DROP COLUMN gone'],
    after: [`UPDATE $t SET n = 'b' WHERE id = 1`],
    expected: [
      ['CREATE', '$t', '1', {}, { id: 1, n: 'a', gone: 'x' }],
      ['UPDATE', '$t', '1', { id: 1, n: 'a' }, { id: 1, n: 'b' }],
    ],
  },
  {
    name: 'rename_column',
    setup: ['CREATE TABLE $t (id int PRIMARY KEY, n text)'],
    before: [`INSERT INTO $t VALUES (1, 'a')`, `UPDATE $t SET n = 'a2'`],
    ddl: ['ALTER TABLE $t RENAME COLUMN n TO n2'],
    after: [`UPDATE $t SET n2 = 'b'`],
    expected: [
      ['CREATE', '$t', '1', {}, { id: 1, n: 'a' }],
      ['UPDATE', '$t', '1', { id: 1, n: 'a' }, { id: 1, n: 'a2' }],
      ['UPDATE', '$t', '1', { id: 1, n2: 'a2' }, { id: 1, n2: 'b' }],
    ],
  },
  {
    name: 'text_to_int',
    setup: ['CREATE TABLE $t (id int PRIMARY KEY, code text)'],
    before: [`INSERT INTO $t VALUES (1, '007')`],
    ddl: ['ALTER TABLE $t ALTER COLUMN code TYPE int USING code::int'],
    after: [`UPDATE $t SET code = 8`],
    expected: [
      ['CREATE', '$t', '1', {}, { id: 1, code: '007' }],
      ['UPDATE', '$t', '1', { id: 1, code: 7 }, { id: 1, code: 8 }],
    ],
  },
  {
    name: 'text_to_jsonb',
    setup: ['CREATE TABLE $t (id int PRIMARY KEY, doc text)'],
    before: [`INSERT INTO $t VALUES (1, 'hello')`, `INSERT INTO $t VALUES (2, '{not json')`],
    ddl: ['ALTER TABLE $t ALTER COLUMN doc TYPE jsonb USING to_jsonb(doc)'],
    after: [`UPDATE $t SET doc = '{"a": 1}' WHERE id = 1`],
    expected: [
      ['CREATE', '$t', '1', {}, { id: 1, doc: 'hello' }],
      ['CREATE', '$t', '2', {}, { id: 2, doc: '{not json' }],
      ['UPDATE', '$t', '1', { id: 1, doc: 'hello' }, { id: 1, doc: { a: 1 } }],
    ],
  },
  {
    name: 'int_to_bigint',
    setup: ['CREATE TABLE $t (id int PRIMARY KEY, n int)'],
    before: [`INSERT INTO $t VALUES (1, 5)`],
    ddl: ['ALTER TABLE $t ALTER COLUMN id TYPE bigint, ALTER COLUMN n TYPE bigint'],
    after: [`UPDATE $t SET n = 6000000000`],
    expected: [
      ['CREATE', '$t', '1', {}, { id: 1, n: 5 }],
      ['UPDATE', '$t', '1', { id: 1, n: 5 }, { id: 1, n: 6000000000 }],
    ],
  },
  {
    name: 'varchar_length',
    setup: ['CREATE TABLE $t (id int PRIMARY KEY, v varchar(5))'],
    before: [`INSERT INTO $t VALUES (1, 'abc')`],
    ddl: ['ALTER TABLE $t ALTER COLUMN v TYPE varchar(10)'],
    after: [`UPDATE $t SET v = 'abcdefgh'`],
    expected: [
      ['CREATE', '$t', '1', {}, { id: 1, v: 'abc' }],
      ['UPDATE', '$t', '1', { id: 1, v: 'abc' }, { id: 1, v: 'abcdefgh' }],
    ],
  },
  {
    name: 'not_null',
    setup: ['CREATE TABLE $t (id int PRIMARY KEY, v text)'],
    before: [`INSERT INTO $t VALUES (1, 'a')`],
    ddl: ['ALTER TABLE $t ALTER COLUMN v SET NOT NULL', `UPDATE $t SET v = 'b'`, 'ALTER TABLE $t ALTER COLUMN v DROP NOT NULL'],
    after: [`UPDATE $t SET v = NULL`],
    expected: [
      ['CREATE', '$t', '1', {}, { id: 1, v: 'a' }],
      ['UPDATE', '$t', '1', { id: 1, v: 'a' }, { id: 1, v: 'b' }],
      ['UPDATE', '$t', '1', { id: 1, v: 'b' }, { id: 1, v: null }],
    ],
  },
  {
    name: 'rename_table',
    setup: ['CREATE TABLE $t (id int PRIMARY KEY, n text)'],
    before: [`INSERT INTO $t VALUES (1, 'a')`],
    ddl: ['ALTER TABLE $t RENAME TO $t_r'],
    after: [`UPDATE $t_r SET n = 'b'`],
    expected: [
      ['CREATE', '$t', '1', {}, { id: 1, n: 'a' }],
      ['UPDATE', '$t_r', '1', { id: 1, n: 'a' }, { id: 1, n: 'b' }],
    ],
  },
  {
    name: 'identity_default',
    setup: ['CREATE TABLE $t (id int PRIMARY KEY, n text)'],
    before: [`INSERT INTO $t VALUES (1, 'a')`, `UPDATE $t SET n = 'a2'`],
    ddl: ['ALTER TABLE $t REPLICA IDENTITY DEFAULT'],
    after: [`UPDATE $t SET n = 'b'`, `DELETE FROM $t`],
    expected: [
      ['CREATE', '$t', '1', {}, { id: 1, n: 'a' }],
      ['UPDATE', '$t', '1', { id: 1, n: 'a' }, { id: 1, n: 'a2' }],
      // Without FULL the old row is not in the WAL: an UPDATE has no before, a DELETE only the key.
      ['UPDATE', '$t', '1', {}, { id: 1, n: 'b' }],
      ['DELETE', '$t', '1', { id: 1 }, {}],
    ],
  },
  {
    name: 'new_table',
    before: [],
    ddl: ['CREATE TABLE $t (id int PRIMARY KEY, n text)', 'ALTER TABLE $t REPLICA IDENTITY FULL'],
    after: [`INSERT INTO $t VALUES (1, 'a')`, `UPDATE $t SET n = 'b'`],
    expected: [
      ['CREATE', '$t', '1', {}, { id: 1, n: 'a' }],
      ['UPDATE', '$t', '1', { id: 1, n: 'a' }, { id: 1, n: 'b' }],
    ],
  },
];

/**
 * Every DDL of a migration, with capture keeping up (live) and with capture stopped during the DDL
 * and started after it (behind: the walsender then decodes the older rows under their own relation
 * message while the catalog already has the new schema). Each change is recorded once, with the
 * column names, types and key of its own time, and capture never stalls.
 */
describe.each(['live', 'behind'] as const)('capture across schema changes, %s (real PostgreSQL)', (mode) => {
  let db: TestDatabase;
  let worker: BemiCaptureWorker;
  const table = (c: SchemaCase) => `sc_${c.name}_${mode}`;
  const sql = (c: SchemaCase, text: string) => text.replace(/\$t/g, table(c));
  const context = (c: SchemaCase, step: string) => ({ case: c.name, step });

  beforeAll(async () => {
    db = await createTestDatabase(`capture_schema_${mode}`);
    await installTriggers(db);
    for (const c of CASES) for (const s of c.setup ?? []) await db.query(sql(c, s));
    for (const c of CASES) if (c.setup) await db.query(sql(c, 'ALTER TABLE $t REPLICA IDENTITY FULL'));
    worker = new Worker(captureOptions(db, { logger: new RecordingLogger(), reconnectDelayMs: 50, maxReconnectDelayMs: 200 }));
    await worker.start();
    await syncCapture(db);
    if (mode === 'behind') await worker.stop();
    for (const c of CASES) for (const s of c.before) await db.query(withContext(context(c, 'before'), sql(c, s)));
    // Live: the rows before the DDL are decoded before it commits.
    if (mode === 'live') await syncCapture(db);
    for (const c of CASES) for (const s of c.ddl) await db.query(withContext(context(c, 'ddl'), sql(c, s)));
    for (const c of CASES) for (const s of c.after) await db.query(withContext(context(c, 'after'), sql(c, s)));
    if (mode === 'behind') await worker.start();
    await syncCapture(db);
  }, 120_000);

  afterAll(async () => {
    await stopAndDropSlot(worker, db);
    await db?.drop();
  });

  it('never stalls: the worker streams without a single reconnect', () => {
    expect(worker.status()).toMatchObject({ state: 'streaming', reconnects: 0, lastError: null, unknownKeys: 0, invalidContexts: 0 });
  });

  it.each(CASES.map((c) => [c.name, c] as const))('%s: each change once, with the names, values and key of its time', async (_name, c) => {
    const tables = [...new Set(c.expected.map(([, t]) => sql(c, t)))];
    const order = (r: { commit_position: string; seq: number }) => BigInt(r.commit_position) * 1_000_000n + BigInt(r.seq);
    const rows = (await Promise.all(tables.map((t) => changesOf(db, t)))).flat().sort((a, b) => (order(a) < order(b) ? -1 : 1));
    expect(rows.map((r) => [r.operation, r.table, r.primary_key, r.before, r.after])).toEqual(c.expected.map(([op, t, pk, before, after]) => [op, sql(c, t), pk, before, after]));
    expect(rows.map((r) => r.context.case)).toEqual(rows.map(() => c.name));
  });
});

/**
 * Under REPLICA IDENTITY FULL the relation message flags every column, so the key of a change
 * comes from the schema log: the shape its table had at that point of the stream. Capture behind
 * (stopped during the DDL) must store the same keys as capture keeping up: the key of each change's
 * own time, never today's, never a NULL for a table that had a key.
 */
describe.each(['live', 'behind'] as const)('capture: primary keys across key changes, %s (real PostgreSQL)', (mode) => {
  let db: TestDatabase;
  let worker: BemiCaptureWorker;
  let logger: RecordingLogger;

  beforeAll(async () => {
    db = await createTestDatabase(`capture_keys_${mode}`);
    await installTriggers(db);
    await db.query(`CREATE TABLE renamed_key (id int PRIMARY KEY, n text); CREATE TABLE recreated (id int PRIMARY KEY, n text); CREATE TABLE keyed_later (id int NOT NULL, n text);
                    CREATE TABLE unkeyed (id int PRIMARY KEY, n text); CREATE TABLE moved_key (id int PRIMARY KEY, code text NOT NULL);
                    CREATE TABLE no_identity (id int PRIMARY KEY, n text);
                    ALTER TABLE renamed_key REPLICA IDENTITY FULL; ALTER TABLE recreated REPLICA IDENTITY FULL; ALTER TABLE keyed_later REPLICA IDENTITY FULL;
                    ALTER TABLE unkeyed REPLICA IDENTITY FULL; ALTER TABLE moved_key REPLICA IDENTITY FULL; ALTER TABLE no_identity REPLICA IDENTITY NOTHING`);
    logger = new RecordingLogger();
    worker = new Worker(captureOptions(db, { logger }));
    await worker.start();
    await syncCapture(db);
    if (mode === 'behind') await worker.stop();
    await db.query(`INSERT INTO renamed_key VALUES (1, 'a'); INSERT INTO recreated VALUES (6, 'old'); INSERT INTO keyed_later VALUES (3, 'x');
                    INSERT INTO unkeyed VALUES (4, 'x'); INSERT INTO moved_key VALUES (5, 'k5'); INSERT INTO no_identity VALUES (8, 'x')`);
    if (mode === 'live') await syncCapture(db);
    await db.query(`ALTER TABLE renamed_key RENAME COLUMN id TO key_id; UPDATE renamed_key SET n = 'b'`);
    await db.query(`DROP TABLE recreated; CREATE TABLE recreated (id int PRIMARY KEY, label int); ALTER TABLE recreated REPLICA IDENTITY FULL; INSERT INTO recreated VALUES (1, 10)`);
    await db.query(`ALTER TABLE keyed_later ADD PRIMARY KEY (id); UPDATE keyed_later SET n = 'y'`);
    await db.query(`ALTER TABLE unkeyed DROP CONSTRAINT unkeyed_pkey; UPDATE unkeyed SET n = 'y'`);
    // The same columns, another key: only a log of shapes can tell the two apart.
    await db.query(`ALTER TABLE moved_key DROP CONSTRAINT moved_key_pkey, ADD PRIMARY KEY (code); UPDATE moved_key SET id = 50`);
    await db.query(`INSERT INTO no_identity VALUES (9, 'y')`);
    if (mode === 'behind') await worker.start();
    await syncCapture(db);
  }, 60_000);

  afterAll(async () => {
    await stopAndDropSlot(worker, db);
    await db?.drop();
  });

  const keys = async (table: string) => (await changesOf(db, table)).map((r) => [r.operation, r.primary_key]);

  it('keeps the key of a renamed key column and of a dropped table, as of each change', async () => {
    const rows = [...(await changesOf(db, 'renamed_key')), ...(await changesOf(db, 'recreated'))];
    expect(rows.map((r) => [r.table, r.operation, r.primary_key, r.after])).toEqual([
      ['renamed_key', 'CREATE', '1', { id: 1, n: 'a' }],
      ['renamed_key', 'UPDATE', '1', { key_id: 1, n: 'b' }],
      ['recreated', 'CREATE', '6', { id: 6, n: 'old' }],
      ['recreated', 'CREATE', '1', { id: 1, label: 10 }],
    ]);
  });

  it('gives a change the key its table had then: none before ADD PRIMARY KEY, none after DROP, the new one after a swap', async () => {
    expect(await keys('keyed_later')).toEqual([
      ['CREATE', null],
      ['UPDATE', '3'],
    ]);
    expect(await keys('unkeyed')).toEqual([
      ['CREATE', '4'],
      ['UPDATE', null],
    ]);
    expect(await keys('moved_key')).toEqual([
      ['CREATE', '5'],
      ['UPDATE', 'k5'],
    ]);
  });

  it('records inserts into a table with REPLICA IDENTITY NOTHING, with their key', async () => {
    expect(await keys('no_identity')).toEqual([
      ['CREATE', '8'],
      ['CREATE', '9'],
    ]);
  });

  it('never reports a key as unknown, and writes the schema log', async () => {
    expect(worker.status().unknownKeys).toBe(0);
    expect(logger.messages('warn').filter((m) => /stored without|schema log/i.test(m))).toEqual([]);
    const log = await db.query<{ table: string; primary_key: string[]; dropped: boolean }>(
      `SELECT "table", primary_key, dropped FROM _bemi_schema_log WHERE "table" = 'renamed_key' ORDER BY commit_position, position`,
    );
    expect(log.map((r) => r.primary_key)).toEqual([['id'], ['key_id']]);
  });
});
