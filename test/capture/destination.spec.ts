import type { BemiCaptureWorker } from '../../lib/capture/capture.worker';
import { createTestDatabase, type TestDatabase } from '../support/database';
import { createCaptureDatabase, dropCaptureDatabase, startWorker, waitFor, withContext } from './support/capture-helpers';

describe('capture into another database and schema', () => {
  let source: TestDatabase;
  let destination: TestDatabase;
  let worker: BemiCaptureWorker | undefined;

  beforeAll(async () => {
    source = await createCaptureDatabase('capture_src', `CREATE TABLE item (id int PRIMARY KEY, v text)`);
    destination = await createTestDatabase('capture_dst');
  });

  afterAll(async () => {
    await dropCaptureDatabase(worker, source);
    await destination.drop();
  });

  it('creates the tables in the destination schema and writes there, leaving the source without them', async () => {
    ({ worker } = await startWorker(source, { destination: destination.url, schema: 'audit' }));
    await source.query(withContext({ userId: 9 }, `INSERT INTO item VALUES (1, 'one'), (2, 'two')`));
    await source.query(`UPDATE item SET v = 'uno' WHERE id = 1`);
    await waitFor(async () => (await destination.query(`SELECT count(*)::int AS n FROM audit.changes`))[0].n === 3, 'three changes in the destination');
    const rows = await destination.query(`SELECT database, "table", operation, primary_key, context FROM audit.changes_with_context ORDER BY commit_position, seq`);
    expect(rows).toEqual([
      { database: source.name, table: 'item', operation: 'CREATE', primary_key: '1', context: { userId: 9 } },
      { database: source.name, table: 'item', operation: 'CREATE', primary_key: '2', context: { userId: 9 } },
      { database: source.name, table: 'item', operation: 'UPDATE', primary_key: '1', context: {} },
    ]);
    const [state] = await destination.query(`SELECT slot_name, database, last_commit_position IS NOT NULL AS stored FROM audit._bemi_capture_state`);
    expect(state).toEqual({ slot_name: worker.status().slotName, database: source.name, stored: true });
    expect(await source.query(`SELECT to_regclass('public.changes') AS c, to_regclass('audit.changes') AS a`)).toEqual([{ c: null, a: null }]);
  });
});
