import 'reflect-metadata';
import { MikroORM } from '@mikro-orm/core';
import { PostgreSqlDriver } from '@mikro-orm/postgresql';
import { BemiCaptureWorker } from '../../lib/capture/capture.worker';
import type { BemiCaptureOptions } from '../../lib/options/capture-options';
import { BemiChange } from '../../lib/history/bemi-change.entity';
import { BemiHistory } from '../../lib/history/bemi-history';
import { createTestDatabase, type TestDatabase } from '../support/database';
import { RecordingLogger } from '../support/recording-logger';
import { captureOptions, installTriggers, stopAndDropSlot, syncCapture } from '../capture/support/capture-helpers';

/** A database with the context triggers and `ddl`, captured by a running worker: history through the real capture path. */
export interface CapturedTrail {
  db: TestDatabase;
  worker: BemiCaptureWorker;
  /** The database's clock now, as at() takes it (UTC, microseconds). */
  now(): Promise<string>;
  /** A short wait, so that moments taken around it fall between commits. */
  pause(): Promise<void>;
  /** BemiHistory over a MikroORM of the database (tables by name; created once). */
  history(): Promise<BemiHistory>;
  /** Another BemiHistory on the same ORM, with empty caches (after DDL on the trail). */
  freshHistory(): Promise<BemiHistory>;
  close(): Promise<void>;
}

/** `capture`: more worker options (e.g. `chain`). */
export async function startCapturedTrail(label: string, ddl: string, capture: BemiCaptureOptions = {}): Promise<CapturedTrail> {
  const db = await createTestDatabase(label);
  await installTriggers(db);
  await db.query(ddl);
  const worker = new BemiCaptureWorker(captureOptions(db, { logger: new RecordingLogger(), ...capture }));
  await worker.start();
  await syncCapture(db);
  let orm: MikroORM | undefined;
  let history: BemiHistory | undefined;
  const ormOf = async () => (orm ??= await MikroORM.init({ driver: PostgreSqlDriver, clientUrl: db.url, entities: [BemiChange], allowGlobalContext: true, debug: false }));
  return {
    db,
    worker,
    now: async () => (await db.query<{ t: string }>(`SELECT to_char(clock_timestamp() AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"') AS t`))[0].t,
    pause: () => new Promise((r) => setTimeout(r, 20)),
    history: async () => (history ??= BemiHistory.create(await ormOf())),
    freshHistory: async () => BemiHistory.create(await ormOf()),
    close: async () => {
      await orm?.close(true);
      await stopAndDropSlot(worker, db);
      await db.drop();
    },
  };
}
