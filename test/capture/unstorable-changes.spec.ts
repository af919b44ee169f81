import type { BemiCaptureWorker } from '../../lib/capture/capture.worker';
import type { TestDatabase } from '../support/database';
import type { RecordingLogger } from '../support/recording-logger';
import { changesOf, createCaptureDatabase, dropCaptureDatabase, startWorker, syncCapture, withContext } from './support/capture-helpers';

/**
 * A change the destination refuses for its values must neither stop capture (a retry would meet it
 * again, forever) nor vanish: it is stored in a form that cannot be refused, and reported.
 */
describe('capture: a change the destination refuses (real PostgreSQL, in-process worker)', () => {
  let db: TestDatabase;
  let worker: BemiCaptureWorker;
  let logger: RecordingLogger;

  beforeAll(async () => {
    db = await createCaptureDatabase('capture_unstorable', `CREATE TABLE item (id int PRIMARY KEY, note text)`);
    ({ worker, logger } = await startWorker(db));
    await syncCapture(db);
    // Stands for any value the destination cannot hold (SQLSTATE class 22, as jsonb's own refusals).
    await db.query(`CREATE FUNCTION refuse_poison() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN
                      IF NEW.after->>'note' = 'poison' THEN RAISE EXCEPTION 'value refused' USING ERRCODE = '22023'; END IF; RETURN NEW; END $$;
                    CREATE TRIGGER refuse_poison BEFORE INSERT ON changes FOR EACH ROW EXECUTE FUNCTION refuse_poison()`);
  });

  afterAll(async () => {
    await dropCaptureDatabase(worker, db);
  });

  it('stores it with its values as text and the reason, keeps its neighbours and context, and reports it', async () => {
    await db.query(withContext({ userId: 7 }, `INSERT INTO item VALUES (1, 'a'), (2, 'poison'), (3, 'c')`));
    await db.query(`INSERT INTO item VALUES (4, 'after')`);
    await syncCapture(db);
    const rows = await changesOf(db, 'item');
    expect(rows.map((r) => [r.primary_key, r.seq, r.context])).toEqual([
      ['1', 0, { userId: 7 }],
      ['2', 1, { userId: 7 }],
      ['3', 2, { userId: 7 }],
      ['4', 0, {}],
    ]);
    expect(rows[0].after).toEqual({ id: 1, note: 'a' });
    expect(rows[1].after).toEqual({ _bemi: { unstorable: 'value refused (SQLSTATE 22023)', text: '{"id":2,"note":"poison"}' } });
    const status = worker.status();
    expect(status).toMatchObject({ state: 'streaming', reconnects: 0, unstorableChanges: 1, lastUnstorable: { position: rows[1].position, reason: 'value refused (SQLSTATE 22023)' } });
    expect(logger.text('error')).toMatch(/The destination refused change \d+\/1 of public\.item \(value refused \(SQLSTATE 22023\)\); it is stored with its values as text/);
  });
});
