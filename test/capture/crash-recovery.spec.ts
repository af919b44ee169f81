import { Client } from 'pg';
import type { TestDatabase } from '../support/database';
import { WalReader } from '../support/wal-reader';
import { createCaptureDatabase, syncCapture, uniqueSlot, waitFor, withContext } from './support/capture-helpers';
import { spawnCapture, type ChildRun } from './support/processes';

/**
 * Writes a random mix of transactions while the worker (a separate process) is killed with
 * SIGKILL at random moments and restarted; afterwards `changes` must hold every committed change
 * exactly once, compared with an independent reader of the same WAL (test_decoding).
 */
describe('capture: exactly once across kill -9 of the worker', () => {
  let db: TestDatabase;

  beforeAll(async () => {
    db = await createCaptureDatabase('capture_crash', `CREATE TABLE item (id serial PRIMARY KEY, v int NOT NULL, note text)`);
  });

  afterAll(() => db.drop());

  it('stores every committed change once, whatever moment the worker dies at', async () => {
    const slot = uniqueSlot();
    // A tiny batch size puts kills between partial flushes, commits and acknowledgements.
    const args = ['--source', db.url, '--slot', slot, '--publication', slot, '--batch-size', '25', '--progress-interval', '0'];
    let run: ChildRun = spawnCapture(args);
    await run.waitForOutput('Streaming');
    const reference = await WalReader.create(db.url);

    const writer = new Client({ connectionString: db.url });
    await writer.connect();
    let writing = true;
    let statements = 0;
    const write = (async () => {
      let n = 0;
      while (writing) {
        n++;
        const r = Math.random();
        const ctx = { step: n, userId: n % 5 };
        if (r < 0.3) {
          await writer.query(withContext(ctx, `INSERT INTO item (v) VALUES (${n})`));
        } else if (r < 0.55) {
          await writer.query(withContext(ctx, `INSERT INTO item (v) SELECT ${n} FROM generate_series(1, 30)`)); // many changes, one statement
        } else if (r < 0.7) {
          await writer.query(withContext(ctx, `UPDATE item SET v = v + 1 WHERE id IN (SELECT id FROM item ORDER BY id DESC LIMIT 4)`));
        } else if (r < 0.8) {
          await writer.query(withContext(ctx, `DELETE FROM item WHERE id IN (SELECT id FROM item ORDER BY random() LIMIT 3)`));
        } else if (r < 0.85) {
          await writer.query('BEGIN');
          await writer.query(withContext({ rolledBack: n }, `INSERT INTO item (v) VALUES (-1)`));
          await writer.query('ROLLBACK');
        } else if (n % 80 === 0) {
          await writer.query('BEGIN'); // a transaction larger than many batches
          await writer.query(withContext({ big: n }, `INSERT INTO item (v) SELECT g FROM generate_series(1, 600) g`));
          await writer.query(withContext({ bigUpdate: n }, `UPDATE item SET note = 'touched' WHERE id > (SELECT max(id) - 10 FROM item)`));
          await writer.query(`INSERT INTO item (v) VALUES (0)`);
          await writer.query('COMMIT');
        } else {
          await writer.query('BEGIN');
          await writer.query(withContext({ a: n }, `INSERT INTO item (v) VALUES (1), (2)`));
          await writer.query(withContext({ b: n }, `UPDATE item SET v = v * 2 WHERE id = (SELECT max(id) FROM item)`));
          await writer.query(`INSERT INTO item (v) VALUES (3)`);
          await writer.query('COMMIT');
        }
        statements++;
        await new Promise((r) => setTimeout(r, 3)); // leave the 2 CPUs some room for the worker
      }
    })();

    const kills = 5;
    for (let i = 0; i < kills; i++) {
      await new Promise((r) => setTimeout(r, 200 + Math.random() * 1200));
      run.child.kill('SIGKILL');
      const { signal } = await run.exited;
      expect(signal).toBe('SIGKILL');
      await new Promise((r) => setTimeout(r, Math.random() * 300)); // writes continue while it is down
      run = spawnCapture(args);
      await run.waitForOutput('Streaming');
    }
    writing = false;
    await write;

    await writer.end();
    try {
      await syncCapture(db, 90_000);
    } catch (e) {
      run.child.kill('SIGKILL');
      throw new Error(`${(e as Error).message}\nworker stdout:\n${run.stdout}\nworker stderr:\n${run.stderr}`);
    }
    run.child.kill('SIGTERM');
    expect((await run.exited).code).toBe(0);
    expect(run.stdout).toContain('Stopped at');
    await waitFor(async () => (await db.query(`SELECT 1 FROM pg_replication_slots WHERE slot_name = $1 AND active`, [slot])).length === 0, 'the slot to be released');

    // The independent view of what was committed.
    const expected = new Map<string, string[]>();
    for (const c of await reference.readChanges()) {
      if (c.table !== 'public.item') continue;
      const id = /id\[integer\]:(\d+)/.exec(c.data)![1];
      const op = { INSERT: 'CREATE', UPDATE: 'UPDATE', DELETE: 'DELETE' }[c.operation as 'INSERT'];
      const list = expected.get(String(c.xid)) ?? [];
      list.push(`${op} ${id} ${JSON.stringify(c.context ?? {})}`);
      expected.set(String(c.xid), list);
    }
    await reference.close();

    const actual = new Map<string, string[]>();
    const rows = await db.query(`SELECT transaction_id::text AS xid, operation, primary_key, context::text AS context FROM changes_with_context WHERE "table" = 'item' ORDER BY commit_position, seq`);
    for (const r of rows) {
      const list = actual.get(r.xid) ?? [];
      list.push(`${r.operation} ${r.primary_key} ${JSON.stringify(JSON.parse(r.context))}`);
      actual.set(r.xid, list);
    }
    expect(statements).toBeGreaterThan(50);
    expect(rows.length).toBeGreaterThan(600);
    expect(actual.size).toBe(expected.size);
    expect(actual).toEqual(expected);
    // seq numbers each transaction's changes 0..n-1 without gaps: nothing lost inside a transaction
    const gaps = await db.query(
      `SELECT commit_position FROM changes GROUP BY commit_position HAVING max(seq) <> count(*) - 1 OR min(seq) <> 0`,
    );
    expect(gaps).toEqual([]);
  }, 300_000);
});
