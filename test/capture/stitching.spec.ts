import { UNCHANGED_TOAST_MARKER } from '../../lib/trail/json-values';
import type { BemiCaptureWorker } from '../../lib/capture/capture.worker';
import type { TestDatabase } from '../support/database';
import { changesOf, createCaptureDatabase, dropCaptureDatabase, inTransaction, startWorker, syncCapture, withContext } from './support/capture-helpers';

describe('capture: WAL → changes rows (real PostgreSQL, in-process worker)', () => {
  let db: TestDatabase;
  let worker: BemiCaptureWorker;

  beforeAll(async () => {
    db = await createCaptureDatabase('capture_stitch', `
      CREATE TYPE mood AS ENUM ('happy', 'sad');
      CREATE DOMAIN positive AS integer CHECK (VALUE > 0);
      CREATE TABLE todo (id serial PRIMARY KEY, task text, done boolean NOT NULL DEFAULT false);
      CREATE TABLE note (id int PRIMARY KEY, body text);
      CREATE TABLE membership (org_id int, user_id text, role text, PRIMARY KEY (org_id, user_id));
      CREATE TABLE log_line (message text);
      CREATE TABLE uuid_keyed (id uuid PRIMARY KEY DEFAULT gen_random_uuid(), n int);
      CREATE TABLE full_row (id int PRIMARY KEY, a text, b int);
      CREATE TABLE key_only (id int PRIMARY KEY, a text, b int);
      CREATE TABLE toasted (id int PRIMARY KEY, big text, small int);
      ALTER TABLE toasted ALTER COLUMN big SET STORAGE EXTERNAL;
      CREATE TABLE toasted_full (id int PRIMARY KEY, big text, small int);
      ALTER TABLE toasted_full ALTER COLUMN big SET STORAGE EXTERNAL;
      CREATE TABLE "Odd ""Name""" (id int PRIMARY KEY);
      CREATE TABLE value_types (
        id int PRIMARY KEY, n numeric, n_nan numeric, i8 bigint, f8 double precision, f_inf real, b boolean,
        ts timestamptz, d date, iv interval, j json, jb jsonb, ints int[], texts text[], grid int[][],
        u uuid, m mood, moods mood[], raw bytea, nothing text, pos positive, nums numeric[]
      );
    `);
    await db.query(`ALTER TABLE full_row REPLICA IDENTITY FULL; ALTER TABLE toasted_full REPLICA IDENTITY FULL;`);
    ({ worker } = await startWorker(db));
  });

  afterAll(() => dropCaptureDatabase(worker, db));

  it('gives each statement of a transaction its own context, and none after a reset', async () => {
    await inTransaction(db.url, [
      withContext({ userId: 1, endpoint: '/a' }, `INSERT INTO todo (task) VALUES ('a1'), ('a2')`),
      withContext({ userId: 2 }, `UPDATE todo SET done = true WHERE task = 'a1'`),
      `INSERT INTO todo (task) VALUES ('c')`,
      withContext({ userId: 3 }, `DELETE FROM todo WHERE task = 'a2'`),
    ]);
    await syncCapture(db);
    const rows = await changesOf(db, 'todo');
    expect(rows.map((r) => [r.operation, r.after.task ?? r.before.id, r.context])).toEqual([
      ['CREATE', 'a1', { userId: 1, endpoint: '/a' }],
      ['CREATE', 'a2', { userId: 1, endpoint: '/a' }],
      ['UPDATE', 'a1', { userId: 2 }],
      ['CREATE', 'c', {}],
      ['DELETE', rows[1].after.id, { userId: 3 }],
    ]);
    // one transaction: same commit position and xid, seq 0..4 in stream order
    expect(new Set(rows.map((r) => r.commit_position)).size).toBe(1);
    expect(new Set(rows.map((r) => r.transaction_id)).size).toBe(1);
    expect(rows.map((r) => r.seq)).toEqual([0, 1, 2, 3, 4]);
    expect(rows[0].primary_key).toBe(String(rows[0].after.id));
    expect(rows[0].before).toEqual({});
    expect(rows[4].after).toEqual({});
  });

  it('does not carry context from one transaction to the next', async () => {
    await inTransaction(db.url, [withContext({ job: 'x' }, `INSERT INTO note VALUES (1, 'with')`)]);
    await inTransaction(db.url, [`INSERT INTO note VALUES (2, 'without')`]);
    await syncCapture(db);
    const rows = await changesOf(db, 'note');
    expect(rows.map((r) => [r.after.body, r.context])).toEqual([
      ['with', { job: 'x' }],
      ['without', {}],
    ]);
  });

  it('stores nothing for a rolled-back transaction', async () => {
    await db.query(`SELECT 1`); // keep the connection pool warm; the rollback below is its own session
    const { withClient } = await import('../support/database');
    await withClient(db.url, async (c) => {
      await c.query('BEGIN');
      await c.query(withContext({ ghost: true }, `INSERT INTO note VALUES (99, 'ghost')`));
      await c.query('ROLLBACK');
    });
    await syncCapture(db);
    expect(await db.query(`SELECT 1 FROM changes WHERE after->>'body' = 'ghost' OR context ? 'ghost'`)).toEqual([]);
  });

  it('records composite keys as a JSON array, no key as NULL, uuid keys as text, odd table names as is', async () => {
    await db.query(`INSERT INTO membership VALUES (7, 'u"1', 'admin')`);
    await db.query(`INSERT INTO log_line VALUES ('hello')`);
    const [u] = await db.query(`INSERT INTO uuid_keyed (n) VALUES (1) RETURNING id::text`);
    await db.query(`INSERT INTO "Odd ""Name""" VALUES (5)`);
    await syncCapture(db);
    expect((await changesOf(db, 'membership'))[0].primary_key).toBe('[7,"u\\"1"]');
    expect(JSON.parse((await changesOf(db, 'membership'))[0].primary_key)).toEqual([7, 'u"1']);
    expect((await changesOf(db, 'log_line'))[0].primary_key).toBeNull();
    expect((await changesOf(db, 'uuid_keyed'))[0].primary_key).toBe(u.id);
    const odd = await changesOf(db, 'Odd "Name"');
    expect(odd.map((r) => [r.schema, r.primary_key])).toEqual([['public', '5']]);
  });

  it('keeps every value type exactly', async () => {
    await db.query(`INSERT INTO value_types VALUES (
      1, 12345678901234567890.123456789000, 'NaN', 9223372036854775807, 0.1, '-Infinity', true,
      '2024-02-29 23:59:59.123456+05:30', '2024-01-02', '1 day 02:03:04.5',
      '{"a": 1.000000000000000000001, "s": "x\\u0000y", "dup": 1, "dup": 2}', '{"z": 12345678901234567890, "nested": [1, "two", null]}',
      '{1,NULL,3}', ARRAY['plain', 'with "quote"', 'with,comma', 'NULL', NULL, ''], '{{1,2},{3,4}}',
      'a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11', 'sad', '{happy,sad}', '\\xdeadbeef00', NULL, 42, '{1.50,NaN}'
    )`);
    await syncCapture(db);
    const [row] = await changesOf(db, 'value_types');
    // Read numbers back as text: JavaScript would round them, jsonb does not.
    const [text] = await db.query(`SELECT after->'n' #>> '{}' AS n, after->'i8' #>> '{}' AS i8, after->'jb'->'z' #>> '{}' AS z,
      jsonb_typeof(after->'n') AS n_type, after->'j'->'a' #>> '{}' AS ja, jsonb_typeof(after->'i8') AS i8_type,
      (after->>'ts')::timestamptz = '2024-02-29 23:59:59.123456+05:30'::timestamptz AS ts_same
      FROM changes WHERE "table" = 'value_types'`);
    expect(text).toEqual({
      n: '12345678901234567890.123456789000',
      i8: '9223372036854775807',
      z: '12345678901234567890',
      n_type: 'number',
      i8_type: 'number',
      ja: '1.000000000000000000001',
      ts_same: true,
    });
    const a = row.after;
    expect(a.id).toBe(1);
    expect(a.n_nan).toBe('NaN');
    expect(a.f8).toBe(0.1);
    expect(a.f_inf).toBe('-Infinity');
    expect(a.b).toBe(true);
    expect(a.ts).toBe('2024-02-29 18:29:59.123456+00');
    expect(a.d).toBe('2024-01-02');
    expect(a.iv).toBe('1 day 02:03:04.5');
    // json (not jsonb) may hold \u0000, which jsonb cannot: replaced by U+FFFD
    expect(a.j.s).toBe('x\uFFFDy');
    expect(a.jb.nested).toEqual([1, 'two', null]);
    expect(a.ints).toEqual([1, null, 3]);
    expect(a.texts).toEqual(['plain', 'with "quote"', 'with,comma', 'NULL', null, '']);
    expect(a.grid).toEqual([[1, 2], [3, 4]]);
    expect(a.u).toBe('a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11');
    expect(a.m).toBe('sad');
    expect(a.moods).toEqual(['happy', 'sad']);
    expect(a.raw).toBe('\\xdeadbeef00');
    expect(a).toHaveProperty('nothing', null);
    expect(a.pos).toBe(42);
    expect(a.nums).toEqual([1.5, 'NaN']);
    const [nums] = await db.query(`SELECT after->'nums'->0 #>> '{}' AS first FROM changes WHERE "table" = 'value_types'`);
    expect(nums.first).toBe('1.50');
  });

  it('fills before from the WAL: everything with REPLICA IDENTITY FULL, only the key without it', async () => {
    for (const t of ['full_row', 'key_only']) {
      await db.query(`INSERT INTO ${t} VALUES (1, 'x', 1)`);
      await db.query(`UPDATE ${t} SET b = 2 WHERE id = 1`);
      await db.query(`UPDATE ${t} SET id = 10 WHERE id = 1`);
      await db.query(`DELETE FROM ${t} WHERE id = 10`);
    }
    await syncCapture(db);
    const full = await changesOf(db, 'full_row');
    expect(full.map((r) => [r.operation, r.primary_key, r.before, r.after])).toEqual([
      ['CREATE', '1', {}, { id: 1, a: 'x', b: 1 }],
      ['UPDATE', '1', { id: 1, a: 'x', b: 1 }, { id: 1, a: 'x', b: 2 }],
      ['UPDATE', '10', { id: 1, a: 'x', b: 2 }, { id: 10, a: 'x', b: 2 }],
      ['DELETE', '10', { id: 10, a: 'x', b: 2 }, {}],
    ]);
    const keyOnly = await changesOf(db, 'key_only');
    expect(keyOnly.map((r) => [r.operation, r.primary_key, r.before, r.after])).toEqual([
      ['CREATE', '1', {}, { id: 1, a: 'x', b: 1 }],
      ['UPDATE', '1', {}, { id: 1, a: 'x', b: 2 }],
      ['UPDATE', '10', { id: 1 }, { id: 10, a: 'x', b: 2 }],
      ['DELETE', '10', { id: 10 }, {}],
    ]);
  });

  it('handles unchanged TOASTed values: filled from before when the WAL has it, marked otherwise', async () => {
    const big = 'x'.repeat(20_000); // STORAGE EXTERNAL: stored out of line, uncompressed
    for (const t of ['toasted', 'toasted_full']) {
      await db.query(`INSERT INTO ${t} VALUES (1, $1, 1)`, [big]);
      await db.query(`UPDATE ${t} SET small = 2 WHERE id = 1`);
    }
    await syncCapture(db);
    const [, plainUpdate] = await changesOf(db, 'toasted');
    expect(plainUpdate.after.small).toBe(2);
    expect(plainUpdate.after.big).toBe(UNCHANGED_TOAST_MARKER);
    const [, fullUpdate] = await changesOf(db, 'toasted_full');
    expect(fullUpdate.after.big).toBe(big);
    expect(fullUpdate.before.big).toBe(big);
  });

  it('records TRUNCATE as one change per table, with the statement context', async () => {
    await db.query(`INSERT INTO note VALUES (50, 'to be truncated')`);
    await db.query(withContext({ action: 'reset' }, `TRUNCATE note, log_line`));
    await syncCapture(db);
    const rows = await db.query(`SELECT "table", operation, context, before, after, primary_key FROM changes WHERE operation = 'TRUNCATE' ORDER BY seq`);
    expect(rows).toEqual([
      { table: 'note', operation: 'TRUNCATE', context: { action: 'reset' }, before: {}, after: {}, primary_key: null },
      { table: 'log_line', operation: 'TRUNCATE', context: { action: 'reset' }, before: {}, after: {}, primary_key: null },
    ]);
  });

  it('stores contexts jsonb cannot hold (NUL, lone surrogates) with U+FFFD in their place', async () => {
    // Written by hand as the ORM hook would: JSON escapes for the characters jsonb rejects.
    const json = '{"who":"a\\u0000b","half":"\\ud800","pair":"\\ud83d\\ude00","k\\u0000":1}';
    await db.query(`/*Bemi ${json} Bemi*/ INSERT INTO note VALUES (60, 'odd context')`);
    await syncCapture(db);
    const [row] = await db.query(`SELECT context FROM changes WHERE after->>'body' = 'odd context'`);
    expect(row.context).toEqual({ who: 'a\uFFFDb', half: '\uFFFD', pair: '😀', 'k\uFFFD': 1 });
  });

  it('records the commit time to the microsecond and each change at its own LSN', async () => {
    const [before] = await db.query(`SELECT clock_timestamp()::text AS t`);
    await db.query(`INSERT INTO note VALUES (70, 'timing'), (71, 'timing')`);
    const [after] = await db.query(`SELECT clock_timestamp()::text AS t`);
    await syncCapture(db);
    const rows = await db.query(
      `SELECT committed_at BETWEEN $1::timestamptz AND $2::timestamptz AS in_window, to_char(committed_at, 'US') AS us,
              queued_at >= date_trunc('milliseconds', committed_at) AS queued_after, position::text, commit_position::text
         FROM changes WHERE after->>'body' = 'timing' ORDER BY seq`,
      [before.t, after.t],
    );
    expect(rows.map((r) => r.in_window)).toEqual([true, true]);
    expect(rows.map((r) => r.queued_after)).toEqual([true, true]);
    // One multi-row INSERT: two changes, two positions, both before the commit record.
    expect(BigInt(rows[0].position)).toBeLessThan(BigInt(rows[1].position));
    expect(BigInt(rows[1].position)).toBeLessThan(BigInt(rows[0].commit_position));
    const [ts] = await db.query(`SELECT count(*)::int AS n FROM changes WHERE to_char(committed_at, 'US') NOT LIKE '%000'`);
    expect(ts.n).toBeGreaterThan(0); // sub-millisecond digits survive (the client library's Date would drop them)
  });
});
