import type { BemiCaptureWorker } from '../../lib/capture/capture.worker';
import { pruneChanges } from '../../lib/retention/prune-changes';
import { bemiChangesPartitionSql, bemiChangesTableSql } from '../../lib/trail/changes-table';
import type { TestDatabase } from '../support/database';
import { createCaptureDatabase, dropCaptureDatabase, startWorker, syncCapture } from '../capture/support/capture-helpers';
import { verifyOn } from '../capture/support/verify-on';
import { links } from '../history/chain-tampering';
import { PRUNE_INDEX } from './support';

const DAY_MS = 86_400_000;

/** The database's clock, between two groups of commits. */
async function clock(db: TestDatabase): Promise<number> {
  return Number((await db.query<{ ms: string }>(`SELECT ceil(extract(epoch FROM clock_timestamp()) * 1000)::bigint::text AS ms`))[0].ms);
}

async function writeGroup(db: TestDatabase, from: number): Promise<void> {
  for (let i = from; i < from + 4; i++) await db.query(`INSERT INTO item VALUES ($1, 'n')`, [i]);
  await syncCapture(db);
}

describe('retention keeps a chained trail verifiable (capture worker, real PostgreSQL)', () => {
  describe('batched deletes', () => {
    let db: TestDatabase;
    let worker: BemiCaptureWorker;

    beforeAll(async () => {
      db = await createCaptureDatabase('chain_anchor', `CREATE TABLE item (id int PRIMARY KEY, note text)`);
      ({ worker } = await startWorker(db, { chain: true }));
      await db.query(PRUNE_INDEX);
    });

    afterAll(() => dropCaptureDatabase(worker, db));

    it('records where it cut, verify starts there, and a row deleted right after the cut is found', async () => {
      await writeGroup(db, 1);
      const cut = await clock(db);
      await writeGroup(db, 100);
      const before = await links(db);
      const result = await pruneChanges(db.url, { maxAge: '1d', now: new Date(cut + DAY_MS), batchSize: 3 });
      expect(result.rows).toBeGreaterThan(3);
      const after = await links(db);
      const lastPruned = before[before.length - after.length - 1];
      const [anchor] = await db.query(`SELECT database, commit_position::text, seq, encode(chain_hash, 'hex') AS hash FROM _bemi_chain_anchor`);
      expect(anchor).toEqual({ database: db.name, commit_position: lastPruned.commit_position, seq: lastPruned.seq, hash: lastPruned.hash });
      const verified = await verifyOn(db);
      expect(verified).toMatchObject({ ok: true, rows: after.length, chained: after.length, unverifiable: 0, anchors: [{ database: db.name, commitPosition: lastPruned.commit_position, seq: lastPruned.seq }] });

      // The first change after the cut deleted: its successor names it, and it is after the anchor.
      const first = after[0];
      await db.query(`DELETE FROM changes WHERE commit_position = $1 AND seq = $2`, [first.commit_position, first.seq]);
      expect(await verifyOn(db)).toMatchObject({ ok: false, broken: { kind: 'deleted', position: { commitPosition: first.commit_position, seq: first.seq } } });
    });
  });

  describe('whole partitions dropped', () => {
    let db: TestDatabase;
    let worker: BemiCaptureWorker;

    beforeAll(async () => {
      db = await createCaptureDatabase('chain_anchor_partitioned', `CREATE TABLE item (id int PRIMARY KEY, note text)`);
      const month = new Date().toISOString().slice(0, 7);
      await db.query([bemiChangesTableSql({ partitionByMonth: true }).up, bemiChangesPartitionSql(month), `${PRUNE_INDEX};`].join('\n'));
      ({ worker } = await startWorker(db, { chain: true }));
    });

    afterAll(() => dropCaptureDatabase(worker, db));

    it('anchors at the newest change of the dropped partition; later changes (in DEFAULT) link from it', async () => {
      await writeGroup(db, 1);
      const before = await links(db);
      const now = new Date();
      const nextMonth = new Date(Date.UTC(now.getUTCFullYear(), now.getUTCMonth() + 1, 1));
      const result = await pruneChanges(db.url, { maxAge: '1d', now: new Date(nextMonth.getTime() + DAY_MS) });
      expect(result.partitions).toHaveLength(1);
      expect(await links(db)).toEqual([]);
      const last = before[before.length - 1];
      expect(await db.query(`SELECT commit_position::text, seq FROM _bemi_chain_anchor`)).toEqual([{ commit_position: last.commit_position, seq: last.seq }]);

      // A worker started now finds no stored change: it continues from the anchor.
      const slotName = worker.status().slotName;
      await worker.stop();
      ({ worker } = await startWorker(db, { chain: true, slotName }));
      await writeGroup(db, 100);
      const kept = await links(db);
      expect([kept[0].previous_position, kept[0].previous_seq]).toEqual([last.commit_position, last.seq]);
      expect(await verifyOn(db)).toMatchObject({ ok: true, rows: kept.length, chained: kept.length });
      await db.query(`DELETE FROM changes WHERE commit_position = $1 AND seq = $2`, [kept[0].commit_position, kept[0].seq]);
      expect(await verifyOn(db)).toMatchObject({ ok: false, broken: { kind: 'deleted', position: { commitPosition: kept[0].commit_position, seq: kept[0].seq } } });
    });
  });
});
