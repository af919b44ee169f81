import type { BemiHistory } from '../../lib/history/bemi-history';
import { BemiHistoryUnavailableError } from '../../lib/history/history.errors';
import { syncCapture } from '../capture/support/capture-helpers';
import type { TestDatabase } from '../support/database';
import { startCapturedTrail, type CapturedTrail } from './captured-trail';

/**
 * History across the DDL of a migration, through the real capture path: row 1 is 'n1-upd' at T0,
 * then the DDL, then 'n1-late'. at() and tableAt() at T0 answer under today's names, with the
 * values of T0, never the live ones (docs/history.md, "Schema changes and history").
 */
describe.each(['live', 'behind'] as const)('history across schema changes, capture %s (real PostgreSQL)', (mode) => {
  let trail: CapturedTrail;
  let db: TestDatabase;
  let history: BemiHistory;
  let t0: string;
  let afterRecreate: string;

  const TABLES = ['col_renamed', 'key_renamed', 'tbl', 'recreated', 'readded', 'added'];

  beforeAll(async () => {
    trail = await startCapturedTrail(`history_schema_${mode}`, TABLES.map((t) => `CREATE TABLE ${t} (id int PRIMARY KEY, n text); ALTER TABLE ${t} REPLICA IDENTITY FULL;`).join('\n'));
    const { worker } = trail;
    ({ db } = trail);
    for (const t of TABLES) await db.query(`INSERT INTO ${t} VALUES (1, 'n1'), (6, 'six'); UPDATE ${t} SET n = 'n1-upd' WHERE id = 1`);
    await syncCapture(db);
    t0 = await trail.now();
    await trail.pause();
    if (mode === 'behind') await worker.stop();
    await db.query(`ALTER TABLE col_renamed RENAME COLUMN n TO n2; UPDATE col_renamed SET n2 = 'n1-late' WHERE id = 1`);
    await db.query(`ALTER TABLE key_renamed RENAME COLUMN id TO sc_id; UPDATE key_renamed SET n = 'n1-late' WHERE sc_id = 1`);
    // Row 6 changes after T0 but only before the rename: its changes are all under the old name.
    await db.query(`UPDATE tbl SET n = 'six-2' WHERE id = 6`);
    await db.query(`ALTER TABLE tbl RENAME TO tbl_renamed; UPDATE tbl_renamed SET n = 'n1-late' WHERE id = 1`);
    await db.query(`DROP TABLE recreated; CREATE TABLE recreated (id int PRIMARY KEY, n text); ALTER TABLE recreated REPLICA IDENTITY FULL; INSERT INTO recreated VALUES (1, 'new')`);
    await db.query(`ALTER TABLE readded DROP COLUMN n; ALTER TABLE readded ADD COLUMN n text; UPDATE readded SET n = 'n1-late' WHERE id = 1`);
    await db.query(`ALTER TABLE added ADD COLUMN extra text; UPDATE added SET n = 'n1-late', extra = 'x' WHERE id = 1`);
    await trail.pause();
    afterRecreate = await trail.now();
    if (mode === 'behind') await worker.start();
    await syncCapture(db);
    history = await trail.history();
  }, 120_000);

  afterAll(() => trail?.close());

  it('RENAME COLUMN: the value of T0 under the new name', async () => {
    expect(await history.at('col_renamed', 1, t0)).toEqual({ id: 1, n2: 'n1-upd' });
    expect(await history.tableAt('col_renamed', t0, {})).toEqual([
      { id: 1, n2: 'n1-upd' },
      { id: 6, n2: 'six' },
    ]);
    expect(await history.at('col_renamed', 1, new Date())).toEqual({ id: 1, n2: 'n1-late' });
  });

  it('RENAME COLUMN of the key: the record of T0, under the new key name', async () => {
    expect(await history.at('key_renamed', 1, t0)).toEqual({ sc_id: 1, n: 'n1-upd' });
    expect(await history.tableAt('key_renamed', t0, {})).toEqual([
      { sc_id: 1, n: 'n1-upd' },
      { sc_id: 6, n: 'six' },
    ]);
  });

  it('RENAME TABLE: the renamed table answers for T0 with the row of T0, not the live one', async () => {
    expect(await history.at('tbl_renamed', 1, t0)).toEqual({ id: 1, n: 'n1-upd' });
    expect(await history.at('tbl_renamed', 6, t0)).toEqual({ id: 6, n: 'six' });
    expect(await history.tableAt('tbl_renamed', t0, {})).toEqual([
      { id: 1, n: 'n1-upd' },
      { id: 6, n: 'six' },
    ]);
  });

  it('DROP TABLE then CREATE TABLE: the new table never answers with a row of the dropped one', async () => {
    expect(await history.at('recreated', 6, afterRecreate)).toBeNull();
    expect(await history.at('recreated', 1, afterRecreate)).toEqual({ id: 1, n: 'new' });
    // The table of that name at T0 was another one: asked for the current table, that is said, not answered with [] or its rows.
    await expect(history.at('recreated', 1, t0)).rejects.toThrow(/public\.recreated was created at .*; at .* its name belonged to another table, dropped at/);
    await expect(history.tableAt('recreated', t0, {})).rejects.toThrow(BemiHistoryUnavailableError);
    expect(await history.tableAt('recreated', afterRecreate, {})).toEqual([{ id: 1, n: 'new' }]);
  });

  it('RENAME TABLE: changes() of the renamed table lists the changes made under its former name too', async () => {
    const changes = await history.changes('tbl_renamed', { primaryKey: 6 });
    expect(changes.map((c) => [c.table, c.operation, c.after.n])).toEqual([
      ['tbl', 'CREATE', 'six'],
      ['tbl', 'UPDATE', 'six-2'],
    ]);
    expect((await history.changes('tbl_renamed', { from: t0 })).map((c) => c.table)).toEqual(['tbl', 'tbl_renamed']);
  });

  it('RENAME TABLE: the former name still stands for the table', async () => {
    expect(await history.at('tbl', 1, t0)).toEqual({ id: 1, n: 'n1-upd' });
    expect(await history.at('tbl', 1, new Date())).toEqual({ id: 1, n: 'n1-late' });
  });

  it('a column dropped and added again under its name: the new column has no value at T0', async () => {
    expect(await history.at('readded', 1, t0)).toEqual({ id: 1, n: null });
  });

  it('a column added after T0 is null at T0, never the live value', async () => {
    expect(await history.at('added', 1, t0)).toEqual({ id: 1, n: 'n1-upd', extra: null });
  });
});
