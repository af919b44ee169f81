import type { BemiCaptureWorker } from '../../lib/capture/capture.worker';
import { BemiCaptureWorker as Worker } from '../../lib/capture/capture.worker';
import { parseTableShape, SchemaLog, type SchemaLogEntry } from '../../lib/capture/schema-log';
import { createTestDatabase, type TestDatabase } from '../support/database';
import { RecordingLogger } from '../support/recording-logger';
import { captureOptions, changesOf, installTriggers, stopAndDropSlot, syncCapture } from './support/capture-helpers';

const shape = (over: object = {}) =>
  Buffer.from(
    JSON.stringify({ oid: 42, schema: 'public', table: 't', dropped: false, created: false, columns: [{ attnum: 1, name: 'id', typeOid: 23, type: 'integer', generated: false }], key: ['id'], ...over }),
  );

describe('parseTableShape', () => {
  it('reads a shape as the event trigger emits it', () => {
    expect(parseTableShape(shape())).toEqual({ oid: 42, schema: 'public', table: 't', dropped: false, created: false, columns: [{ attnum: 1, name: 'id', typeOid: 23, type: 'integer', generated: false }], primaryKey: ['id'] });
  });

  it.each([
    ['not JSON', Buffer.from('{oops')],
    ['no oid', shape({ oid: undefined })],
    ['an oid out of range', shape({ oid: 2 ** 32 })],
    ['columns not an array', shape({ columns: 'id' })],
    ['a malformed column', shape({ columns: [{ attnum: 1, name: 'id' }] })],
    ['a key column it does not have', shape({ key: ['nope'] })],
    ['too large', Buffer.alloc(1024 * 1024 + 1, 32)],
    ['deeply nested', Buffer.from('['.repeat(20_000) + ']'.repeat(20_000))],
  ])('refuses a message with %s, saying why', (_what, content) => {
    expect(typeof parseTableShape(content)).toBe('string');
  });
});

describe('SchemaLog', () => {
  const entry = (commit: bigint, position: bigint, key: string[]): SchemaLogEntry => ({
    oid: 42,
    schema: 'public',
    table: 't',
    dropped: false,
    created: false,
    columns: [],
    primaryKey: key,
    commitPosition: commit,
    position,
    committedAt: '2026-01-01T00:00:00.000Z',
  });

  it('answers with the latest entry up to a transaction, and knows a re-delivered one', () => {
    const log = new SchemaLog();
    expect(log.add(entry(200n, 150n, ['b']))).toBe(true);
    expect(log.add(entry(100n, 50n, ['a']))).toBe(true);
    expect(log.add(entry(200n, 150n, ['b']))).toBe(false);
    expect(log.inForce(42, 99n)).toBeUndefined();
    expect(log.inForce(42, 100n)?.primaryKey).toEqual(['a']);
    expect(log.inForce(42, 199n)?.primaryKey).toEqual(['a']);
    expect(log.inForce(42, 200n)?.primaryKey).toEqual(['b']);
    expect(log.inForce(7, 200n)).toBeUndefined();
  });
});

/** The schema log through the real capture path. */
describe('capture: schema log (real PostgreSQL)', () => {
  let db: TestDatabase;
  let worker: BemiCaptureWorker | undefined;
  let logger: RecordingLogger;
  let slotName: string;

  beforeAll(async () => {
    db = await createTestDatabase('capture_schema_log');
    await installTriggers(db);
    await db.query(`CREATE TABLE swapped (id int PRIMARY KEY, code text NOT NULL); ALTER TABLE swapped REPLICA IDENTITY FULL;
                    CREATE TABLE renamed (id int PRIMARY KEY, n text); ALTER TABLE renamed REPLICA IDENTITY FULL`);
    logger = new RecordingLogger();
    const options = captureOptions(db, { logger });
    slotName = options.slotName!;
    worker = new Worker(options);
    await worker.start();
    await syncCapture(db);
  }, 60_000);

  afterAll(async () => {
    await stopAndDropSlot(worker, db);
    await db?.drop();
  });

  it('gives each table its first entry at the first start', async () => {
    const rows = await db.query<{ table: string; primary_key: string[] }>(`SELECT "table", primary_key FROM _bemi_schema_log WHERE "table" IN ('swapped', 'renamed') ORDER BY "table"`);
    expect(rows).toEqual([
      { table: 'renamed', primary_key: ['id'] },
      { table: 'swapped', primary_key: ['id'] },
    ]);
  });

  it('orders a DDL made in a savepoint before the rows its transaction writes after it (capture behind)', async () => {
    await worker!.stop();
    // The message of a DDL in a subtransaction and the next row of its parent could tie on LSN.
    await db.query(`BEGIN; INSERT INTO swapped VALUES (5, 'k5'); SAVEPOINT s;
                    ALTER TABLE swapped DROP CONSTRAINT swapped_pkey, ADD PRIMARY KEY (code); RELEASE SAVEPOINT s;
                    UPDATE swapped SET id = 50; COMMIT`);
    await worker!.start();
    await syncCapture(db);
    expect((await changesOf(db, 'swapped')).map((r) => [r.operation, r.primary_key])).toEqual([
      ['CREATE', '5'],
      ['UPDATE', 'k5'],
    ]);
  });

  it('without its table, capture warns once, falls back to the catalog and marks a change whose key it cannot tell', async () => {
    await worker!.stop();
    await db.query(`DROP TABLE _bemi_schema_log`);
    const options = captureOptions(db, { logger, slotName, publicationName: slotName, ensureSchema: false });
    worker = new Worker(options);
    await worker.start();
    await syncCapture(db);
    expect(logger.messages('warn').filter((m) => /The schema log is off/.test(m))).toHaveLength(1);
    await worker.stop();
    await db.query(`INSERT INTO renamed VALUES (1, 'a')`);
    await db.query(`ALTER TABLE renamed RENAME COLUMN id TO key_id`);
    await worker.start();
    await syncCapture(db);
    const [row] = await changesOf(db, 'renamed');
    expect(row.primary_key).toBeNull();
    expect(row.context._bemi.unknownKey).toMatch(/primary key of public\.renamed \(key_id\) is not among the columns/);
    expect(worker.status().unknownKeys).toBe(1);
  });
});
