import { bemiChangesPartitionSql, bemiChangesTableSql } from '../../lib/trail/changes-table';
import { BemiChange } from '../../lib/history/bemi-change.entity';
import { pruneChanges } from '../../lib/retention/prune-changes';
import { inTransaction, syncCapture, withContext } from '../capture/support/capture-helpers';
import { startCapturedTrail, type CapturedTrail } from './captured-trail';

/**
 * The context stored once per run of a transaction's rows of one table, through the real capture
 * path: what is stored, and that every reader (history, BemiChange, the view) gives every row its own.
 */
const DDL = `CREATE TABLE item (id int PRIMARY KEY, v int NOT NULL); ALTER TABLE item REPLICA IDENTITY FULL;
  CREATE TABLE other (id int PRIMARY KEY, v int NOT NULL);`;

interface Stored {
  seq: number;
  context_seq: number | null;
  stored: Record<string, unknown> | null;
  context: Record<string, unknown>;
  table: string;
}

/** Every row of the transaction that wrote item `id`: what it stores and what the view reads. */
async function transactionOf(trail: CapturedTrail, table: string, id: number): Promise<Stored[]> {
  return trail.db.query<Stored>(
    `SELECT c.seq, c.context_seq, c.context AS stored, v.context, c."table" FROM changes c JOIN changes_with_context v ON v.id = c.id
      WHERE c.commit_position = (SELECT commit_position FROM changes WHERE "table" = $1 AND primary_key = $2 LIMIT 1) ORDER BY c.seq`,
    [table, String(id)],
  );
}

/** Rows whose holder is not in the trail (what retention must never leave). */
const orphansSql = `SELECT count(*)::int AS n FROM changes c WHERE c.context IS NULL
  AND NOT EXISTS (SELECT 1 FROM changes h WHERE h.commit_position = c.commit_position AND h.seq = c.context_seq AND h.context IS NOT NULL)`;

describe('context stored once per run of rows', () => {
  let trail: CapturedTrail;
  const A = { userId: 1, endpoint: '/a' };
  const B = { userId: 2, endpoint: '/b' };

  beforeAll(async () => {
    trail = await startCapturedTrail('ctx_store', DDL);
    const { db } = trail;
    await db.query(withContext(A, `INSERT INTO item SELECT g, 0 FROM generate_series(1, 100) g`));
    // Two contexts in one transaction, a second table under the same context, then a statement without any.
    await inTransaction(db.url, [
      withContext(A, `INSERT INTO item SELECT g, 0 FROM generate_series(101, 103) g`),
      withContext(B, `UPDATE item SET v = 1 WHERE id BETWEEN 1 AND 3`),
      withContext(B, `INSERT INTO other VALUES (1, 0), (2, 0)`),
      `INSERT INTO item VALUES (104, 0), (105, 0)`,
    ]);
    await syncCapture(db);
  }, 60_000);

  afterAll(() => trail?.close());

  it('stores a 100-row statement context once and gives it to every row (history, BemiChange, the view)', async () => {
    const rows = (await transactionOf(trail, 'item', 50)).filter((r) => r.table === 'item');
    expect(rows).toHaveLength(100);
    expect(rows.filter((r) => r.stored !== null)).toEqual([expect.objectContaining({ seq: 0, context_seq: 0, stored: A })]);
    expect(rows.every((r) => r.context_seq === 0)).toBe(true);
    expect(new Set(rows.map((r) => JSON.stringify(r.context)))).toEqual(new Set([JSON.stringify(A)]));

    const history = await trail.history();
    const changes = await history.changes('item', { operation: 'CREATE', limit: 100 });
    expect(changes.slice(0, 100).map((c) => c.context)).toEqual(Array(100).fill(A));
    const one = changes[57];
    expect((await history.change(one.id)).context).toEqual(A);
    expect((await history.transaction(one)).map((c) => c.context)).toEqual(Array(100).fill(A));
  });

  it('maps every row of the run with its context on the BemiChange entity', async () => {
    const { MikroORM } = await import('@mikro-orm/core');
    const { PostgreSqlDriver } = await import('@mikro-orm/postgresql');
    const orm = await MikroORM.init({ driver: PostgreSqlDriver, clientUrl: trail.db.url, entities: [BemiChange], allowGlobalContext: true, debug: false });
    try {
      const em = orm.em.fork();
      const rows = await em.find(BemiChange, { table: 'item', operation: 'CREATE' }, { orderBy: { commitPosition: 'asc', seq: 'asc' }, limit: 100 });
      expect(rows.map((r) => r.context)).toEqual(Array(100).fill(A));
      const audited = await em.find(BemiChange, { table: 'item', operation: 'CREATE' }, { schema: 'public', orderBy: { commitPosition: 'asc', seq: 'asc' } });
      expect(audited.map((r) => r.context)).toEqual([...Array(103).fill(A), {}, {}]);
    } finally {
      await orm.close(true);
    }
  });

  it('starts a new holder where the context or the table changes, and resets to {} after a context-less statement', async () => {
    const rows = await transactionOf(trail, 'item', 101);
    const shape = rows.map((r) => [r.table, r.seq, r.context_seq, r.stored === null ? null : r.stored, r.context]);
    expect(shape).toEqual([
      ['item', 0, 0, A, A],
      ['item', 1, 0, null, A],
      ['item', 2, 0, null, A],
      ['item', 3, 3, B, B],
      ['item', 4, 3, null, B],
      ['item', 5, 3, null, B],
      ['other', 6, 6, B, B],
      ['other', 7, 6, null, B],
      ['item', 8, 8, {}, {}],
      ['item', 9, 8, null, {}],
    ]);
    const history = await trail.history();
    const tx = await history.transaction((await history.changes('item', { primaryKey: 105 }))[0]);
    expect(tx.map((c) => c.context)).toEqual([A, A, A, B, B, B, B, B, {}, {}]);
  });

  it('changes({ context }) finds every row of a matching run and nothing else', async () => {
    const history = await trail.history();
    const byB = await history.changes({ context: { userId: 2 }, limit: 100 });
    expect(byB.map((c) => [c.table, c.operation, c.primaryKey])).toEqual([
      ['item', 'UPDATE', '1'],
      ['item', 'UPDATE', '2'],
      ['item', 'UPDATE', '3'],
      ['other', 'CREATE', '1'],
      ['other', 'CREATE', '2'],
    ]);
    expect(byB.every((c) => c.context.userId === 2)).toBe(true);
    const byA = await history.changes('item', { context: { endpoint: '/a' }, limit: 500 });
    expect(byA).toHaveLength(103);
    expect(new Set(byA.map((c) => c.primaryKey))).toEqual(new Set(Array.from({ length: 103 }, (_, i) => String(i + 1))));
    // Pages follow one another through a run.
    const first = await history.changes('item', { context: { endpoint: '/a' }, limit: 40 });
    const second = await history.changes('item', { context: { endpoint: '/a' }, limit: 40, after: first[39] });
    expect([...first, ...second].map((c) => c.id)).toEqual(byA.slice(0, 80).map((c) => c.id));
    expect(await history.changes({ context: { userId: 3 } })).toEqual([]);
  });

  it('reads rows of the old layout (their own context, no context_seq) beside the new ones', async () => {
    const { db } = trail;
    // A row as an older version wrote it, in a transaction of its own, far below any real LSN.
    await db.query(`INSERT INTO changes (primary_key, after, context, database, schema, "table", operation, committed_at, queued_at, transaction_id, position, commit_position, seq)
      VALUES ('900', '{"id":900,"v":0}', '{"userId":2,"endpoint":"/old"}', current_database(), 'public', 'item', 'CREATE', now() - interval '1 day', now(), 1, 10, 10, 0)`);
    const history = await trail.history();
    const found = await history.changes('item', { context: { userId: 2 }, limit: 100 });
    expect(found.map((c) => [c.primaryKey, c.context.endpoint])).toEqual([['900', '/old'], ['1', '/b'], ['2', '/b'], ['3', '/b']]);
    const [old] = await db.query(`SELECT context FROM changes_with_context WHERE primary_key = '900'`);
    expect(old.context).toEqual({ userId: 2, endpoint: '/old' });
    await db.query(`DELETE FROM changes WHERE commit_position = 10`);
  });

  it('never reads a row whose holder is gone as {}', async () => {
    const { db } = trail;
    await db.query(`INSERT INTO changes (primary_key, context, context_seq, database, schema, "table", operation, committed_at, queued_at, transaction_id, position, commit_position, seq)
      VALUES ('901', NULL, 0, current_database(), 'public', 'item', 'CREATE', now() - interval '1 day', now(), 1, 11, 11, 1)`);
    const [row] = await db.query(`SELECT context FROM changes_with_context WHERE primary_key = '901'`);
    expect(row.context).toEqual({ _bemi: { context: 'missing' } });
    await db.query(`DELETE FROM changes WHERE commit_position = 11`);
  });

  it('prunes in batches without ever leaving a row whose holder is gone', async () => {
    const { db } = trail;
    const stop = new AbortController();
    // One batch of 7 rows, then stop: the batch ends inside the 100-row transaction.
    const first = await pruneChanges(db.url, { tables: ['item'], maxAge: 1, batchSize: 7, signal: stop.signal, logger: { log: () => stop.abort(), warn: () => undefined } });
    expect(first).toMatchObject({ rows: 7, stopped: true });
    expect((await db.query(orphansSql))[0].n).toBe(0);
    const [{ n }] = await db.query(`SELECT count(*)::int AS n FROM changes WHERE "table" = 'item' AND context IS NOT NULL AND seq = 0 AND commit_position = (SELECT commit_position FROM changes WHERE "table" = 'item' AND primary_key = '50')`);
    expect(n).toBe(1);
    await pruneChanges(db.url, { tables: ['item'], maxAge: 1, batchSize: 7 });
    expect(await db.query(`SELECT 1 FROM changes WHERE "table" = 'item'`)).toEqual([]);
    // The other table's run kept its own holder.
    expect((await db.query(orphansSql))[0].n).toBe(0);
    expect((await db.query(`SELECT context FROM changes_with_context WHERE "table" = 'other' ORDER BY seq`)).map((r) => r.context)).toEqual([B, B]);
  });
});

describe('context stored once per run, on a trail partitioned by month', () => {
  let trail: CapturedTrail;
  const A = { userId: 7 };

  beforeAll(async () => {
    const month = new Date().toISOString().slice(0, 7);
    trail = await startCapturedTrail('ctx_part', `${DDL}\n${bemiChangesTableSql({ partitionByMonth: true }).up}\n${bemiChangesPartitionSql(month)}`);
    await trail.db.query(withContext(A, `INSERT INTO item SELECT g, 0 FROM generate_series(1, 100) g`));
    await trail.db.query(withContext({ userId: 8 }, `UPDATE item SET v = 2 WHERE id <= 50`));
    await syncCapture(trail.db);
  }, 60_000);

  afterAll(() => trail?.close());

  it('reads every row through its holder and finds a run by context', async () => {
    expect((await trail.db.query(`SELECT relkind FROM pg_class WHERE oid = 'changes'::regclass`))[0].relkind).toBe('p');
    const stored = await trail.db.query(`SELECT count(*) FILTER (WHERE context IS NOT NULL)::int AS holders, count(*)::int AS n FROM changes WHERE "table" = 'item'`);
    expect(stored).toEqual([{ holders: 2, n: 150 }]);
    const history = await trail.history();
    expect((await history.changes('item', { context: { userId: 8 }, limit: 100 })).map((c) => c.context)).toEqual(Array(50).fill({ userId: 8 }));
    expect((await history.changes('item', { context: { userId: 7 }, limit: 100 })).map((c) => c.primaryKey)).toEqual(Array.from({ length: 100 }, (_, i) => String(i + 1)));
  });

  it('prunes in batches and drops whole months, keeping each holder with its rows', async () => {
    const { db } = trail;
    const stop = new AbortController();
    await pruneChanges(db.url, { tables: ['item'], maxAge: 1, batchSize: 30, signal: stop.signal, logger: { log: () => stop.abort(), warn: () => undefined } });
    expect((await db.query(orphansSql))[0].n).toBe(0);
    expect((await db.query(`SELECT count(*)::int AS n FROM changes WHERE "table" = 'item'`))[0].n).toBe(120);
    // Months wholly older than the cutoff go as a whole: a transaction's rows share committed_at, so one partition.
    const later = new Date(Date.now() + 70 * 86_400_000).toISOString();
    const result = await pruneChanges(db.url, { maxAge: '1d', now: later });
    expect(result.partitions).toHaveLength(1);
    expect((await db.query(`SELECT count(*)::int AS n FROM changes`))[0].n).toBe(0);
  });
});
