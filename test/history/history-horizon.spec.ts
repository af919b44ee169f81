import 'reflect-metadata';
import { MikroORM } from '@mikro-orm/core';
import { PostgreSqlDriver } from '@mikro-orm/postgresql';
import type { BemiCaptureWorker } from '../../lib/capture/capture.worker';
import { BemiCaptureWorker as Worker } from '../../lib/capture/capture.worker';
import { BemiChange } from '../../lib/history/bemi-change.entity';
import { BemiHistory } from '../../lib/history/bemi-history';
import { BemiBeforeHorizonError } from '../../lib/history/history.errors';
import { pruneChanges } from '../../lib/retention/prune-changes';
import { createTestDatabase, type TestDatabase } from '../support/database';
import { RecordingLogger } from '../support/recording-logger';
import { captureOptions, installTriggers, stopAndDropSlot, syncCapture } from '../capture/support/capture-helpers';

/**
 * After retention pruned a table's old changes, a moment before the horizon it recorded gets a
 * typed error (the trail no longer holds every change after it), and later moments still answer.
 */
describe('history and the retention horizon (real PostgreSQL, real capture)', () => {
  let db: TestDatabase;
  let worker: BemiCaptureWorker;
  let orm: MikroORM;
  let history: BemiHistory;
  const moments: string[] = [];

  const now = async () => (await db.query<{ t: string }>(`SELECT to_char(clock_timestamp() AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"') AS t`))[0].t;
  const pause = () => new Promise((r) => setTimeout(r, 20));

  beforeAll(async () => {
    db = await createTestDatabase('history_horizon');
    await installTriggers(db);
    await db.query(`CREATE TABLE pruned (id int PRIMARY KEY, n text); ALTER TABLE pruned REPLICA IDENTITY FULL;
                    CREATE TABLE kept (id int PRIMARY KEY, n text); ALTER TABLE kept REPLICA IDENTITY FULL`);
    worker = new Worker(captureOptions(db, { logger: new RecordingLogger() }));
    await worker.start();
    await syncCapture(db);
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
    orm = await MikroORM.init({ driver: PostgreSqlDriver, clientUrl: db.url, entities: [BemiChange], allowGlobalContext: true, debug: false });
    history = BemiHistory.create(orm);
  }, 60_000);

  afterAll(async () => {
    await orm?.close(true);
    await stopAndDropSlot(worker, db);
    await db?.drop();
  });

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
