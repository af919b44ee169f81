import { Client } from 'pg';
import { describeRelation, waitUntilVisible } from '../../lib/capture/relation-catalog';
import { createTestDatabase, type TestDatabase } from '../support/database';

describe('relation catalog (real PostgreSQL)', () => {
  let db: TestDatabase;
  let writer: Client;
  let reader: Client;

  beforeAll(async () => {
    db = await createTestDatabase('capture_catalog');
    writer = new Client({ connectionString: db.url });
    reader = new Client({ connectionString: db.url });
    await writer.connect();
    await reader.connect();
  });

  afterAll(async () => {
    await writer.end();
    await reader.end();
    await db.drop();
  });

  it('waits for a transaction to become visible, and reads the table it created once it is', async () => {
    await writer.query('BEGIN');
    await writer.query(`CREATE TABLE made_here (a int, b text, PRIMARY KEY (b, a))`);
    const [{ xid, oid }] = (await writer.query(`SELECT (pg_current_xact_id()::text::bigint & 4294967295)::text AS xid, 'made_here'::regclass::oid::int AS oid`)).rows;
    const started = Date.now();
    await waitUntilVisible(reader, xid, 300); // still running: waits for the whole bound
    expect(Date.now() - started).toBeGreaterThanOrEqual(300);
    expect((await describeRelation(reader, oid)).primaryKey).toEqual([]);
    await writer.query('COMMIT');
    await waitUntilVisible(reader, xid, 60_000);
    expect((await describeRelation(reader, oid)).primaryKey).toEqual(['b', 'a']);
  });
});
