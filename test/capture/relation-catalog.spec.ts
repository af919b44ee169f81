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
    const columns = (await writer.query(`SELECT attname AS name, atttypid::int AS "typeOid" FROM pg_attribute WHERE attrelid = $1 AND attnum > 0 ORDER BY attnum`, [oid])).rows;
    const shape = { relationOid: oid, schema: 'public', name: 'made_here', replicaIdentity: 'full' as const, keyColumns: ['a', 'b'], columns };
    const started = Date.now();
    await waitUntilVisible(reader, xid, 300); // still running: waits for the whole bound
    expect(Date.now() - started).toBeGreaterThanOrEqual(300);
    expect(await describeRelation(reader, shape)).toMatchObject({ primaryKey: [], keyProblem: expect.stringMatching(/public.made_here was dropped before/) });
    await writer.query('COMMIT');
    await waitUntilVisible(reader, xid, 60_000);
    expect(await describeRelation(reader, shape)).toEqual({ primaryKey: ['b', 'a'], kinds: new Map([['a', 'number'], ['b', 'string']]), contextTrigger: false });
  });

  describe('follows the relation message, not the catalog of today', () => {
    let oid: number;
    const col = (name: string, type: string) => ({ name, typeOid: TYPE_OIDS[type] });
    const TYPE_OIDS: Record<string, number> = { int4: 23, text: 25, jsonb: 3802, bool: 16 };

    beforeAll(async () => {
      await writer.query(`CREATE TABLE shifting (id int PRIMARY KEY, code int, doc jsonb)`);
      oid = (await writer.query(`SELECT 'shifting'::regclass::oid::int AS oid`)).rows[0].oid;
    });

    const shape = (columns: Array<{ name: string; typeOid: number }>, replicaIdentity: 'full' | 'default' = 'full', keyColumns: string[] = columns.map((c) => c.name)) => ({
      relationOid: oid,
      schema: 'public',
      name: 'shifting',
      replicaIdentity,
      keyColumns,
      columns,
    });

    it('types each column by the type the message names (a row written while code was text stays a string)', async () => {
      const info = await describeRelation(reader, shape([col('id', 'int4'), col('code', 'text'), col('doc', 'text')]));
      expect(info.kinds).toEqual(new Map([['id', 'number'], ['code', 'string'], ['doc', 'string']]));
      expect(info.primaryKey).toEqual(['id']);
      expect(info.keyProblem).toBeUndefined();
    });

    it('keeps a column whose type no longer exists as text', async () => {
      expect((await describeRelation(reader, shape([col('id', 'int4'), { name: 'gone', typeOid: 4_000_000_000 }]))).kinds.get('gone')).toBe('string');
    });

    it('takes the key from the message under REPLICA IDENTITY DEFAULT, renamed or not', async () => {
      expect((await describeRelation(reader, shape([col('old_id', 'int4'), col('code', 'text')], 'default', ['old_id']))).primaryKey).toEqual(['old_id']);
    });

    it('says why when the key columns are not among the message columns (renamed since, under FULL)', async () => {
      const info = await describeRelation(reader, shape([col('old_id', 'int4'), col('code', 'int4')]));
      expect(info.primaryKey).toEqual([]);
      expect(info.keyProblem).toMatch(/primary key of public.shifting \(id\) is not among the columns its rows were written with/);
    });
  });
});
