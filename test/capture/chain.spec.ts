import type { BemiCaptureWorker } from '../../lib/capture/capture.worker';
import { bemiChangesPartitionSql, bemiChangesTableSql } from '../../lib/trail/changes-table';
import type { TestDatabase } from '../support/database';
import { links } from '../history/chain-tampering';
import { verifyOn } from './support/verify-on';
import { createCaptureDatabase, dropCaptureDatabase, inTransaction, startWorker, syncCapture, withContext } from './support/capture-helpers';

describe('capture with the chain on (real PostgreSQL, in-process worker)', () => {
  describe('small batches, and changes stored in their unstorable form', () => {
    let db: TestDatabase;
    let worker: BemiCaptureWorker;

    beforeAll(async () => {
      db = await createCaptureDatabase('capture_chain', `CREATE TABLE item (id int PRIMARY KEY, note text)`);
      // Three rows a batch: one transaction spans several batches, linked while earlier ones are written.
      ({ worker } = await startWorker(db, { chain: true, batchSize: 3 }));
      await syncCapture(db);
      await db.query(`CREATE FUNCTION refuse_poison() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN
                        IF NEW.after->>'note' = 'poison' THEN RAISE EXCEPTION 'value refused' USING ERRCODE = '22023'; END IF; RETURN NEW; END $$;
                      CREATE TRIGGER refuse_poison BEFORE INSERT ON changes FOR EACH ROW EXECUTE FUNCTION refuse_poison()`);
    });

    afterAll(() => dropCaptureDatabase(worker, db));

    it('links a refused change as it is stored, and the batches after it from there', async () => {
      const notes = Array.from({ length: 20 }, (_, i) => (i === 2 || i === 10 ? 'poison' : `n${i}`));
      await db.query(withContext({ userId: 1 }, `INSERT INTO item SELECT i, note FROM unnest($1::text[]) WITH ORDINALITY AS t(note, i)`), [notes]);
      for (let i = 0; i < 5; i++) await db.query(`UPDATE item SET note = $1 WHERE id = $2`, [i === 3 ? 'poison' : `u${i}`, i + 1]);
      await inTransaction(db.url, [`INSERT INTO item VALUES (100, 'a')`, `INSERT INTO item VALUES (101, 'poison')`, `DELETE FROM item WHERE id = 100`]);
      await syncCapture(db);
      expect(worker.status()).toMatchObject({ unstorableChanges: 4, reconnects: 0 });
      const stored = await links(db);
      expect(stored.every((r) => r.hash !== null)).toBe(true);
      for (let i = 1; i < stored.length; i++) expect([stored[i].previous_position, stored[i].previous_seq]).toEqual([stored[i - 1].commit_position, stored[i - 1].seq]);
      expect(await verifyOn(db)).toMatchObject({ ok: true, rows: stored.length, chained: stored.length });
    });
  });

  describe('a trail partitioned by month', () => {
    let db: TestDatabase;
    let worker: BemiCaptureWorker;

    beforeAll(async () => {
      db = await createCaptureDatabase('capture_chain_partitioned', `CREATE TABLE item (id int PRIMARY KEY, note text)`);
      const month = new Date().toISOString().slice(0, 7);
      await db.query([bemiChangesTableSql({ partitionByMonth: true }).up, bemiChangesPartitionSql(month)].join('\n'));
      ({ worker } = await startWorker(db, { chain: true }));
    });

    afterAll(() => dropCaptureDatabase(worker, db));

    it('links across partitions and verifies', async () => {
      await db.query(`INSERT INTO item SELECT i, 'x' || i FROM generate_series(1, 50) i`);
      await db.query(`UPDATE item SET note = 'y' WHERE id <= 10`);
      await syncCapture(db);
      const [{ partitioned }] = await db.query(`SELECT relkind = 'p' AS partitioned FROM pg_class WHERE oid = 'changes'::regclass`);
      expect(partitioned).toBe(true);
      const stored = await links(db);
      expect(stored.length).toBeGreaterThanOrEqual(61);
      expect(await verifyOn(db)).toMatchObject({ ok: true, rows: stored.length, chained: stored.length });
    });
  });

  describe('off by default', () => {
    let db: TestDatabase;
    let worker: BemiCaptureWorker;

    beforeAll(async () => {
      db = await createCaptureDatabase('capture_chain_off', `CREATE TABLE item (id int PRIMARY KEY, note text)`);
      ({ worker } = await startWorker(db));
    });

    afterAll(() => dropCaptureDatabase(worker, db));

    it('leaves the chain columns NULL, and verify says the chain is not enabled', async () => {
      await db.query(`INSERT INTO item VALUES (1, 'a'), (2, 'b')`);
      await syncCapture(db);
      const stored = await links(db);
      expect(stored.length).toBeGreaterThanOrEqual(3);
      expect(stored.every((r) => r.hash === null && r.previous_position === null && r.previous_seq === null)).toBe(true);
      const result = await verifyOn(db);
      expect(result).toMatchObject({ ok: false, status: 'not-enabled', rows: stored.length, chained: 0, unchained: stored.length });
      expect(result.status === 'not-enabled' && result.detail).toMatch(/the chain is not enabled\. Capture with chain: true/);
    });
  });
});
