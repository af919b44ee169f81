import type { BemiHistory } from '../../lib/history/bemi-history';
import { BemiBeforeHorizonError } from '../../lib/history/history.errors';
import { pruneChanges } from '../../lib/retention/prune-changes';
import { syncCapture } from '../capture/support/capture-helpers';
import type { TestDatabase } from '../support/database';
import { startCapturedTrail, type CapturedTrail } from './captured-trail';

/**
 * After retention pruned a table's old changes, a moment before the horizon it recorded gets a
 * typed error (the trail no longer holds every change after it), and later moments still answer.
 */
describe('history and the retention horizon (real PostgreSQL, real capture)', () => {
  let trail: CapturedTrail;
  let db: TestDatabase;
  let history: BemiHistory;
  const moments: string[] = [];

  beforeAll(async () => {
    trail = await startCapturedTrail(
      'history_horizon',
      `CREATE TABLE pruned (id int PRIMARY KEY, n text); ALTER TABLE pruned REPLICA IDENTITY FULL;
       CREATE TABLE kept (id int PRIMARY KEY, n text); ALTER TABLE kept REPLICA IDENTITY FULL`,
    );
    ({ db } = trail);
    const { now, pause } = trail;
    await db.query(`INSERT INTO pruned SELECT i, 'v0' FROM generate_series(1, 5) i; INSERT INTO kept VALUES (1, 'v0')`);
    await pause();
    moments.push(await now()); // 0: every row at v0
    await pause();
    await db.query(`UPDATE pruned SET n = 'v1' WHERE id <= 3; UPDATE kept SET n = 'v1'`);
    await pause();
    moments.push(await now()); // 1: the cutoff
    await pause();
    await db.query(`UPDATE pruned SET n = 'v2' WHERE id = 1`);
    await syncCapture(db);
    await pause();
    moments.push(await now()); // 2: after every change
    // Prune what was committed before moment 1 (the age is measured from an instant one day later).
    const dayLater = new Date(Date.parse(moments[1]) + 86_400_000).toISOString();
    await pruneChanges(db.url, { maxAge: '1d', perTable: { kept: null }, now: dayLater });
    history = await trail.history();
  }, 60_000);

  afterAll(() => trail?.close());

  it('refuses a moment before the horizon, in at() and tableAt(), naming the horizon', async () => {
    const [{ horizon }] = await db.query<{ horizon: string }>(
      `SELECT to_char(horizon AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"') AS horizon FROM _bemi_retention_horizon WHERE "table" = 'pruned'`,
    );
    expect(horizon > moments[0] && horizon < moments[1]).toBe(true);
    for (const call of [() => history.at('pruned', 4, moments[0]), () => history.tableAt('pruned', moments[0], {})]) {
      const error = await call().then(
        () => undefined,
        (e: unknown) => e,
      );
      expect(error).toBeInstanceOf(BemiBeforeHorizonError);
      expect(error).toMatchObject({ horizon, table: 'public.pruned', message: expect.stringContaining(`before the retention horizon of public.pruned (${horizon})`) });
    }
  });

  it('still answers at and after the horizon, and for tables retention keeps', async () => {
    expect(await history.at('pruned', 1, moments[1])).toEqual({ id: 1, n: 'v1' });
    expect((await history.tableAt('pruned', moments[1], {})).map((r: any) => r.n)).toEqual(['v1', 'v1', 'v1', 'v0', 'v0']);
    expect(await history.at('pruned', 1, moments[2])).toEqual({ id: 1, n: 'v2' });
    expect(await history.at('kept', 1, moments[0])).toEqual({ id: 1, n: 'v0' });
  });
});
