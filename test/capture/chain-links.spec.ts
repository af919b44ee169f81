import { Client } from 'pg';
import { ChainLinks, loadChainHead, type ChainPoint } from '../../lib/capture/chain-links';
import type { ChangeRow } from '../../lib/capture/pgoutput-stitcher';
import { chainContent, linkHash } from '../../lib/trail/change-chain';
import { createTestDatabase, type TestDatabase } from '../support/database';
import { createChangesTable } from '../support/changes-table';

function row(commitPosition: string, seq: number): ChangeRow {
  return {
    primaryKey: String(seq),
    previousKey: null,
    before: '{}',
    after: `{"id":${seq}}`,
    context: '{}',
    role: 'app',
    sessionRole: 'app',
    database: 'app',
    schema: 'public',
    table: 'item',
    operation: 'CREATE',
    committedAt: '2026-01-02T03:04:05.123456Z',
    queuedAt: '2026-01-02T03:04:05.200Z',
    transactionId: '7',
    position: commitPosition,
    commitPosition,
    seq,
  };
}

describe('ChainLinks', () => {
  it('starts a chain with no predecessor and links each row to the one before', () => {
    const chain = new ChainLinks(undefined, null);
    const { rows, chain: batch } = chain.link([row('100', 0), row('100', 1), row('200', 0)]);
    expect(rows.map((r) => r.chain!.previous)).toEqual([null, { commitPosition: '100', seq: 0 }, { commitPosition: '100', seq: 1 }]);
    expect(batch.start).toBeNull();
    expect(batch.end).toMatchObject({ commitPosition: '200', seq: 0, hash: rows[2].chain!.hash });
  });

  it('hashes the content with the committed time in microseconds', () => {
    const [r] = new ChainLinks(undefined, null).link([row('100', 0)]).rows;
    const content = chainContent((c) => (c.kind === 'micros' ? '1767323045123456' : ((r as unknown as Record<string, string | number | null>)[c.field] ?? null)));
    expect(r.chain!.hash.equals(linkHash(null, content))).toBe(true);
    expect(new ChainLinks('k'.repeat(16), null).link([row('100', 0)]).rows[0].chain!.hash.equals(r.chain!.hash)).toBe(false);
  });

  it('leaves out rows at or before the stored head (a re-delivery), whatever the length of their positions', () => {
    const head: ChainPoint = { commitPosition: '100', seq: 1, hash: Buffer.alloc(32, 1) };
    const { rows } = new ChainLinks(undefined, head).link([row('99', 5), row('100', 0), row('100', 1), row('100', 2), row('1000', 0)]);
    expect(rows.map((r) => [r.commitPosition, r.seq])).toEqual([['100', 2], ['1000', 0]]);
    expect(rows[0].chain!.previous).toEqual({ commitPosition: '100', seq: 1 });
  });

  it('starts a new chain after a head written with the chain off', () => {
    const { rows } = new ChainLinks(undefined, { commitPosition: '100', seq: 0, hash: null }).link([row('100', 0), row('200', 0)]);
    expect(rows.map((r) => [r.commitPosition, r.chain!.previous])).toEqual([['200', null]]);
  });
});

describe('loadChainHead', () => {
  let db: TestDatabase;
  beforeAll(async () => {
    db = await createTestDatabase('chain_head');
    await createChangesTable(db);
  });
  afterAll(() => db?.drop());

  it('is the last row of the database in stream order (numbers, not text: 10 after 9), or null', async () => {
    const client = new Client({ connectionString: db.url });
    await client.connect();
    try {
      expect(await loadChainHead(client, 'public', 'app')).toBeNull();
      await db.query(
        `INSERT INTO changes (database, schema, "table", operation, committed_at, queued_at, transaction_id, position, commit_position, seq, chain_hash)
         VALUES ('app', 'public', 't', 'CREATE', now(), now(), 1, 9, 9, 3, '\\x01'), ('app', 'public', 't', 'CREATE', now(), now(), 1, 10, 10, 0, NULL),
                ('other', 'public', 't', 'CREATE', now(), now(), 1, 11, 11, 0, '\\x02')`,
      );
      expect(await loadChainHead(client, 'public', 'app')).toEqual({ commitPosition: '10', seq: 0, hash: null });
      expect(await loadChainHead(client, 'public', 'other')).toEqual({ commitPosition: '11', seq: 0, hash: Buffer.from([2]) });
    } finally {
      await client.end();
    }
  });
});
