import type { INestApplication } from '@nestjs/common';
import { Logger } from '@nestjs/common';
import { EntityManager } from '@mikro-orm/postgresql';
import { BemiService } from '../../lib';
import { toJsonSafe } from '../../lib/orm/context-encoder';
import { createTestDatabase, type TestDatabase } from '../support/database';
import { Todo } from '../support/todo';
import { createTodoApp, ormOf, prepareTodoDatabase } from '../support/todo-app';
import { WalReader } from '../support/wal-reader';

/** Small deterministic PRNG (mulberry32) so a failing case can be reproduced from its seed. */
function prng(seed: number): () => number {
  return () => {
    seed = (seed + 0x6d2b79f5) | 0;
    let t = Math.imul(seed ^ (seed >>> 15), 1 | seed);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

// Pieces that break naive comment embedding, SQL quoting or parameter substitution.
const NASTY = ['*/', '/*', '?', '??', '\\?', '--', '$$', '$1', "'", "''", '"', '\u0000', '\\', '\\u002a', ';', ' Bemi*/', '/*Bemi ',
  '😀', '𝄞', '\n', '\r\n', '\t', 'DROP TABLE todo;', ' OR true --', '*/ OR true --', '%s', ':name', '\u2028', 'é', '中文'];

function nastyString(rand: () => number, maxPieces: number): string {
  let s = '';
  const pieces = 1 + Math.floor(rand() * maxPieces);
  for (let i = 0; i < pieces; i++) s += rand() < 0.8 ? NASTY[Math.floor(rand() * NASTY.length)] : String.fromCharCode(32 + Math.floor(rand() * 95));
  return s;
}

describe('no SQL injection or forgery through context', () => {
  let db: TestDatabase;
  let app: INestApplication;
  let wal: WalReader;
  let bemi: BemiService;
  let em: EntityManager;
  let ids: number[];

  beforeAll(async () => {
    db = await createTestDatabase('injection');
    await prepareTodoDatabase((sql) => db.query(sql));
    app = await createTodoApp({ dbUrl: db.url, bemi: { maxContextSize: 200_000 } });
    bemi = app.get(BemiService);
    wal = await WalReader.create(db.url);
    em = ormOf(app).em.fork() as EntityManager;
    ids = [];
    for (let i = 0; i < 5; i++) ids.push(await em.insert(Todo, { task: `row ${i}` }));
  });

  afterAll(async () => {
    await wal?.close();
    await app?.close();
    await db?.drop();
  });

  beforeEach(() => wal.readChanges());

  it('fuzz: hostile context values never change the SQL, and read back from the WAL unchanged', async () => {
    const rand = prng(20261125);
    const contexts: Record<string, unknown>[] = [];
    for (let i = 0; i < 300; i++) {
      const ctx: Record<string, unknown> = { case: i, [nastyString(rand, 3)]: nastyString(rand, 12) };
      if (i % 3 === 0) ctx.nested = { list: [nastyString(rand, 5), 1, null, { deep: nastyString(rand, 5) }] };
      if (i % 50 === 0) ctx.long = Array.from(nastyString(rand, 20).repeat(3000)).slice(0, 40_000).join(''); // 40k code points
      contexts.push(ctx);
    }
    for (const ctx of contexts) {
      // One row matches; an injected "OR true" would update all five.
      const affected = await bemi.run(ctx, () => em.nativeUpdate(Todo, { id: ids[2] }, { task: `case ${ctx.case}` }));
      expect(affected).toBe(1);
    }
    const changes = await wal.readChanges();
    expect(changes).toHaveLength(contexts.length);
    changes.forEach((change, i) => {
      expect(change.operation).toBe('UPDATE');
      expect(change.data).toContain(`'case ${i}'`);
      expect(change.context).toEqual(toJsonSafe(contexts[i]));
    });
    const rows = await db.query<{ task: string }>('SELECT task FROM todo ORDER BY id');
    expect(rows.map((r) => r.task)).toEqual(['row 0', 'row 1', `case ${contexts.length - 1}`, 'row 3', 'row 4']);
  });

  it('the encoded context is JSON that PostgreSQL jsonb parses to the original value', async () => {
    const value = { a: '*/ /* ? ?? \\ \' " $$ -- 😀', b: ['x*/y', { c: '/*Bemi {"userId":1} Bemi*/' }] };
    const { encodeContext } = await import('../../lib');
    const [row] = await db.query<{ v: unknown }>('SELECT $1::jsonb AS v', [encodeContext(value)]);
    expect(row.v).toEqual(value);
  });

  it('data that looks like a context comment never becomes context', async () => {
    const forged = '/*Bemi {"userId":1} Bemi*/';
    await bemi.run({ userId: 2 }, () => em.insert(Todo, { task: forged }));
    await em.insert(Todo, { task: forged }); // no context at all
    await em.execute(`insert into todo (task) values (?)`, [`${forged} x`]);
    await bemi.run({ userId: 3 }, () => em.nativeUpdate(Todo, { task: forged }, { task: `${forged}${forged}` }));
    const changes = await wal.readChanges();
    expect(changes.map((c) => [c.operation, c.context])).toEqual([
      ['INSERT', { userId: 2 }],
      ['INSERT', null],
      ['INSERT', null],
      ['UPDATE', { userId: 3 }],
      ['UPDATE', { userId: 3 }],
    ]);
  });

  it('an oversized context is left off with one warning per endpoint; the write still happens', async () => {
    const warn = jest.spyOn(Logger.prototype, 'warn').mockImplementation(() => undefined);
    try {
      const big = { endpoint: '/import', method: 'POST', blob: 'x'.repeat(300_000) };
      await bemi.run(big, () => em.insert(Todo, { task: 'big 1' }));
      await bemi.run(big, () => em.insert(Todo, { task: 'big 2' }));
      await bemi.run({ ...big, blob: 'y'.repeat(250_000) }, () => em.insert(Todo, { task: 'big 3' }));
      const changes = await wal.readChanges();
      expect(changes.map((c) => [c.operation, c.context])).toEqual([['INSERT', null], ['INSERT', null], ['INSERT', null]]);
      const messages = warn.mock.calls.map((call) => String(call[0]));
      expect(messages).toHaveLength(1);
      expect(messages[0]).toMatch(/"POST \/import".*300\d{3} bytes.*maxContextSize \(200000\)/);
    } finally {
      warn.mockRestore();
    }
  });

  it('values JSON cannot hold are converted deterministically and never fail the write', async () => {
    const circular: Record<string, unknown> = { name: 'loop' };
    circular.self = circular;
    const ctx = {
      big: 12345678901234567890n,
      when: new Date('2026-01-02T03:04:05.678Z'),
      fn: () => 1,
      sym: Symbol('s'),
      missing: undefined,
      list: [undefined, () => 2, NaN, Infinity, 1n],
      circular,
      map: new Map<unknown, unknown>([['a', 1], [2, 'b']]),
      set: new Set(['x', 'y']),
    };
    await bemi.run(ctx, () => em.insert(Todo, { task: 'odd values' }));
    const throwing = { get boom() { throw new Error('getter exploded'); } };
    const warn = jest.spyOn(Logger.prototype, 'warn').mockImplementation(() => undefined);
    try {
      await bemi.run({ endpoint: '/boom', ok: 1, nested: throwing }, () => em.insert(Todo, { task: 'throwing getter' }));
      expect(String(warn.mock.calls[0]?.[0])).toMatch(/could not be serialised \(getter exploded\)/);
    } finally {
      warn.mockRestore();
    }
    const changes = await wal.readChanges();
    expect(changes.map((c) => c.context)).toEqual([
      {
        big: '12345678901234567890',
        when: '2026-01-02T03:04:05.678Z',
        list: [null, null, null, null, '1'],
        circular: { name: 'loop', self: '[Circular]' },
        map: { a: 1, '2': 'b' },
        set: ['x', 'y'],
      },
      null,
    ]);
  });
});
