import type { BemiHistory } from '../../lib/history/bemi-history';
import { changesOf, syncCapture } from '../capture/support/capture-helpers';
import type { TestDatabase } from '../support/database';
import { startCapturedTrail, type CapturedTrail } from './captured-trail';

/**
 * An UPDATE that changes a primary key ends the old key's trail and starts the new key's: the old
 * key no longer exists after it, the new one did not exist before it (REPLICA IDENTITY FULL and
 * DEFAULT alike; docs/history.md, "Schema changes and history").
 */
describe.each(['FULL', 'DEFAULT'] as const)('history across a primary key change, REPLICA IDENTITY %s (real PostgreSQL)', (identity) => {
  let trail: CapturedTrail;
  let db: TestDatabase;
  let history: BemiHistory;
  let t1: string;
  let t2: string;

  beforeAll(async () => {
    trail = await startCapturedTrail(`history_key_change_${identity.toLowerCase()}`, `CREATE TABLE pkt (id int PRIMARY KEY, n text); ALTER TABLE pkt REPLICA IDENTITY ${identity}`);
    ({ db } = trail);
    await db.query(`INSERT INTO pkt VALUES (1, 'a'), (2, 'b')`);
    await trail.pause();
    t1 = await trail.now();
    await trail.pause();
    await db.query(`UPDATE pkt SET id = id + 1000 WHERE id = 1`);
    await trail.pause();
    t2 = await trail.now();
    await syncCapture(db);
    history = await trail.history();
  }, 60_000);

  afterAll(() => trail?.close());

  it('records the key the UPDATE left', async () => {
    const rows = await db.query<{ operation: string; primary_key: string; previous_key: string | null }>(
      `SELECT operation, primary_key, previous_key FROM changes WHERE "table" = 'pkt' ORDER BY commit_position, seq`,
    );
    expect(rows).toEqual([
      { operation: 'CREATE', primary_key: '1', previous_key: null },
      { operation: 'CREATE', primary_key: '2', previous_key: null },
      { operation: 'UPDATE', primary_key: '1001', previous_key: '1' },
    ]);
    expect((await changesOf(db, 'pkt')).length).toBe(3);
  });

  it('at(): the new key did not exist before the change, the old one does not after it', async () => {
    expect(await history.at('pkt', 1001, t1)).toBeNull();
    expect(await history.at('pkt', 1, t2)).toBeNull();
    expect(await history.at('pkt', 1, t1)).toEqual({ id: 1, n: 'a' });
    expect(await history.at('pkt', 1001, t2)).toEqual({ id: 1001, n: 'a' });
  });

  /** The table before the key change (t1) and after it (t2): the row once, under the key of its moment. */
  const expectTableAt = async (h: BemiHistory) => {
    expect(await h.tableAt('pkt', t1, {})).toEqual([
      { id: 1, n: 'a' },
      { id: 2, n: 'b' },
    ]);
    expect(await h.tableAt('pkt', t2, {})).toEqual([
      { id: 2, n: 'b' },
      { id: 1001, n: 'a' },
    ]);
  };

  it('tableAt(): the row once, under the key of each moment', () => expectTableAt(history));

  it('changes(): the UPDATE of the key is in both records\' histories, saying which key it left', async () => {
    expect((await history.changes('pkt', { primaryKey: 1 })).map((c) => [c.operation, c.primaryKey, c.previousKey])).toEqual([
      ['CREATE', '1', null],
      ['UPDATE', '1001', '1'],
    ]);
    expect((await history.changes('pkt', { primaryKey: 1001 })).map((c) => [c.operation, c.primaryKey, c.previousKey])).toEqual([['UPDATE', '1001', '1']]);
  });

  it('revert() of the key change puts the old key back; the old key\'s CREATE cannot be reverted meanwhile', async () => {
    const [create, update] = await history.changes('pkt', { primaryKey: 1 });
    await expect(history.revert(create)).rejects.toThrow(/no longer exists|changed since/);
    if (identity === 'DEFAULT') {
      // Without FULL the UPDATE's before image holds only the key: its other old values are unknown.
      await expect(history.revert(update)).rejects.toThrow(/before image lacks n/);
      return;
    }
    await history.revert(update);
    expect(await db.query(`SELECT id, n FROM pkt ORDER BY id`)).toEqual([
      { id: 1, n: 'a' },
      { id: 2, n: 'b' },
    ]);
    // Put the table back as the other tests expect it (and let capture record both writes).
    await db.query(`UPDATE pkt SET id = 1001 WHERE id = 1`);
    await syncCapture(db);
  });

  it('tableAt() gives the same rows when it walks the trail for its keys (no deleted-keys index)', async () => {
    await db.query(`DROP INDEX _bemi_changes_deleted`);
    try {
      await expectTableAt(await trail.freshHistory());
    } finally {
      await db.query(`CREATE INDEX _bemi_changes_deleted ON changes ("table", primary_key) WHERE operation = 'DELETE'`);
    }
  });
});
