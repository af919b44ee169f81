import { randomBytes } from 'node:crypto';
import { Client } from 'pg';
import { ChangesWriter } from '../../lib/capture/changes-writer';
import type { ChangeRow } from '../../lib/capture/pgoutput-stitcher';
import { createChangesTable } from '../support/changes-table';
import { createTestDatabase, type TestDatabase } from '../support/database';

function row(commit: number, seq: number, value: string): ChangeRow {
  return {
    primaryKey: value,
    previousKey: null,
    before: '{}',
    after: JSON.stringify({ v: value }),
    context: '{"who":"tab\\there"}',
    role: 'app\tuser',
    sessionRole: null,
    database: 'db',
    schema: 'public',
    table: 'odd\ttable\nname\\x',
    operation: 'CREATE',
    committedAt: '2024-01-01T00:00:00.123456Z',
    queuedAt: '2024-01-01T00:00:00.200Z',
    transactionId: '42',
    position: String(commit * 10 + seq),
    commitPosition: String(commit),
    seq,
  };
}

describe('ChangesWriter (destination writes, real PostgreSQL)', () => {
  let db: TestDatabase;
  let client: Client;

  beforeAll(async () => {
    db = await createTestDatabase('capture_writer');
    await createChangesTable(db, { schema: 'audit' });
    await db.query(`INSERT INTO audit._bemi_capture_state (slot_name, database) VALUES ('s', 'db')`);
    client = new Client({ connectionString: db.url });
    await client.connect();
  });

  afterAll(async () => {
    await client.end();
    await db.drop();
  });

  it('writes rows with any characters, and skips changes already stored (exactly once)', async () => {
    const writer = new ChangesWriter(client, 'audit', 's');
    const first = [row(100, 0, 'a\tb'), row(100, 1, 'c\nd'), row(100, 2, 'e\\f')];
    expect(await writer.insert(writer.prepare(first))).toBe(3);
    await writer.commit({ commitPosition: 100n, commitEndPosition: 120n, committedAt: '2024-01-01T00:00:00.123456Z' });

    // The same transaction delivered again together with a new one: only the new rows are added.
    const again = [...first, row(200, 0, 'g'), row(200, 1, 'h')];
    expect(await writer.insert(writer.prepare(again))).toBe(2);
    await writer.commit({ commitPosition: 200n, commitEndPosition: 220n, committedAt: '2024-01-01T00:00:01Z' });

    const rows = await db.query(`SELECT primary_key, "table", after->>'v' AS v, context->>'who' AS who, role, session_role, commit_position::int, seq FROM audit.changes ORDER BY commit_position, seq`);
    expect(rows.map((r) => [r.commit_position, r.seq, r.primary_key, r.v])).toEqual([
      [100, 0, 'a\tb', 'a\tb'],
      [100, 1, 'c\nd', 'c\nd'],
      [100, 2, 'e\\f', 'e\\f'],
      [200, 0, 'g', 'g'],
      [200, 1, 'h', 'h'],
    ]);
    expect(rows.every((r) => r.table === 'odd\ttable\nname\\x' && r.who === 'tab\there' && r.role === 'app\tuser' && r.session_role === null)).toBe(true);
    const [state] = await db.query(`SELECT last_commit_position::int AS c, last_commit_end_position::int AS e FROM audit._bemi_capture_state`);
    expect(state).toEqual({ c: 200, e: 220 });
  });

  it('keeps earlier batches of an open transaction when a later one meets stored rows', async () => {
    const writer = new ChangesWriter(client, 'audit', 's');
    expect(await writer.insert(writer.prepare([row(400, 0, 'x')]))).toBe(1);
    await writer.commit({ commitPosition: 400n, commitEndPosition: 420n, committedAt: '2024-01-01T00:00:02Z' });
    // One destination transaction, three batches; the third repeats a stored row.
    expect(await writer.insert(writer.prepare([row(500, 0, 'y0')]))).toBe(1);
    expect(await writer.insert(writer.prepare([row(500, 1, 'y1')]))).toBe(1);
    expect(await writer.insert(writer.prepare([row(400, 0, 'x'), row(500, 2, 'y2')]))).toBe(1);
    await writer.commit({ commitPosition: 500n, commitEndPosition: 520n, committedAt: '2024-01-01T00:00:03Z' });
    const rows = await db.query(`SELECT commit_position::int AS c, seq, after->>'v' AS v FROM audit.changes WHERE commit_position >= 400 ORDER BY 1, 2`);
    expect(rows).toEqual([
      { c: 400, seq: 0, v: 'x' },
      { c: 500, seq: 0, v: 'y0' },
      { c: 500, seq: 1, v: 'y1' },
      { c: 500, seq: 2, v: 'y2' },
    ]);
    const [state] = await db.query(`SELECT last_commit_position::int AS c, last_committed_at = '2024-01-01T00:00:03Z' AS at_ok FROM audit._bemi_capture_state`);
    expect(state).toEqual({ c: 500, at_ok: true });
    // No savepoint or transaction is left open on the connection.
    expect((await client.query('SELECT count(*)::int AS n FROM pg_stat_activity WHERE pid = pg_backend_pid() AND state = $1', ['active'])).rows[0].n).toBe(1);
    await expect(client.query('SAVEPOINT outside_a_transaction')).rejects.toThrow(/transaction blocks/);
  });

  it('isolates a change the database refuses and stores it as text with the reason; its neighbours and stored rows are untouched', async () => {
    const refused: Array<[number, string]> = [];
    const writer = new ChangesWriter(client, 'audit', 's', undefined, (r, reason) => refused.push([r.seq, reason]));
    expect(await writer.insert(writer.prepare([row(600, 0, 'stored')]))).toBe(1);
    await writer.commit({ commitPosition: 600n, commitEndPosition: 620n, committedAt: '2024-01-01T00:00:04Z' });
    // 40 rows, two of them with images jsonb refuses (an encoder bug, a value too deep), one already stored.
    const rows = Array.from({ length: 40 }, (_, i) => row(700, i, `r${i}`));
    rows[7] = { ...rows[7], after: '{"v": not json}' };
    rows[19] = { ...rows[19], after: '{"v": "nul \u0000 byte"}' };
    rows[31] = { ...rows[31], before: '['.repeat(20_000) + ']'.repeat(20_000) };
    expect(await writer.insert(writer.prepare([row(600, 0, 'stored'), ...rows]))).toBe(40);
    await writer.commit({ commitPosition: 700n, commitEndPosition: 720n, committedAt: '2024-01-01T00:00:05Z' });
    expect(refused.map(([seq]) => seq)).toEqual([7, 19, 31]);
    expect(refused[0][1]).toMatch(/invalid input syntax for type json.*\(SQLSTATE 22P02\)/);
    expect(refused[1][1]).toMatch(/SQLSTATE 22021/);
    expect(refused[2][1]).toMatch(/SQLSTATE 54001/);
    const stored = await db.query(`SELECT seq, primary_key, before, after, context, role, session_role FROM audit.changes WHERE commit_position = 700 ORDER BY seq`);
    expect(stored.map((r) => r.seq)).toEqual(rows.map((r) => r.seq));
    expect(stored.filter((r) => ![7, 19, 31].includes(r.seq)).every((r) => r.after.v === r.primary_key)).toBe(true);
    // the INSERT path keeps the roles too
    expect(stored[7]).toMatchObject({ primary_key: 'r7', context: { who: 'tab\there' }, role: 'app\tuser', session_role: null });
    expect(stored[7].after._bemi).toEqual({ unstorable: refused[0][1], text: '{"v": not json}' });
    expect(stored[19].after._bemi.text).toBe('{"v": "nul \uFFFD byte"}');
    expect(stored[7].before._bemi).toEqual({ unstorable: refused[0][1], text: '{}' });
    expect(stored[31].before._bemi.text).toHaveLength(40_000);
    expect((await db.query(`SELECT count(*)::int AS n FROM audit.changes WHERE commit_position = 600`))[0].n).toBe(1);
  });

  it('stores a change whose key is too long for the trail indexes under a digest of the key, the whole key in the marker', async () => {
    const refused: string[] = [];
    const writer = new ChangesWriter(client, 'audit', 's', undefined, (_r, reason) => refused.push(reason));
    const longKey = randomBytes(4000).toString('hex'); // incompressible: b-tree entries are compressed
    expect(await writer.insert(writer.prepare([row(800, 0, 'fine'), { ...row(800, 1, 'long'), primaryKey: longKey }]))).toBe(2);
    await writer.commit({ commitPosition: 800n, commitEndPosition: 820n, committedAt: '2024-01-01T00:00:06Z' });
    expect(refused).toHaveLength(1);
    expect(refused[0]).toMatch(/index row size .* exceeds .*\(SQLSTATE 54000\)/);
    const [stored] = await db.query(`SELECT primary_key, after FROM audit.changes WHERE commit_position = 800 AND seq = 1`);
    expect(stored.primary_key).toMatch(/^sha256:[0-9a-f]{64}$/);
    expect(stored.after._bemi).toMatchObject({ primaryKey: longKey, text: '{"v":"long"}' });
  });

  it('rolls back everything of an unfinished transaction', async () => {
    const writer = new ChangesWriter(client, 'audit', 's');
    await writer.insert(writer.prepare([row(300, 0, 'partial')]));
    await writer.rollback();
    expect(await db.query(`SELECT 1 FROM audit.changes WHERE commit_position = 300`)).toEqual([]);
  });
});
