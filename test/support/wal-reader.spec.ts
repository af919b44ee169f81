import { attribute, groupTransactions } from './wal-reader';

// test_decoding output (include-xids, skip-empty-xacts) of one transaction: message, insert,
// message, insert. PostgreSQL 14 prints the first message before BEGIN; 15 and later after it.
const msg = (content: string) => `message: transactional: 1 prefix: _bemi, sz: ${content.length} content:${content}`;
const pg17 = ['BEGIN 740', msg('["app", "app"]\n{"a":1}'), 'table public.t: INSERT: id[integer]:1', msg('["app", "app"]\n{"b":1}'), 'table public.t: INSERT: id[integer]:2', 'COMMIT 740'];
const pg14 = [pg17[1], pg17[0], ...pg17.slice(2)];
const rows = (lines: string[], xid = '740') => lines.map((data) => ({ xid, data }));

describe('WalReader grouping of test_decoding output', () => {
  it('reads the same transaction whether BEGIN comes before the first message (15+) or after it (14)', () => {
    for (const lines of [pg17, pg14]) {
      const txs = groupTransactions(rows(lines));
      expect(txs).toHaveLength(1);
      expect(txs[0].events.map((e) => e.kind)).toEqual(['message', 'change', 'message', 'change']);
      expect(attribute(txs).map((c) => c.context)).toEqual([{ a: 1 }, { b: 1 }]);
    }
  });

  it('keeps the early message with its own transaction, not with the one before it', () => {
    const txs = groupTransactions([...rows(['BEGIN 739', 'table public.t: INSERT: id[integer]:0', 'COMMIT 739'], '739'), ...rows(pg14)]);
    expect(txs.map((t) => [t.xid, t.events.length])).toEqual([[739, 1], [740, 4]]);
    expect(attribute(txs).map((c) => c.context)).toEqual([null, { a: 1 }, { b: 1 }]);
  });

  it('keeps a non-transactional message as a transaction of its own', () => {
    const txs = groupTransactions([{ xid: '0', data: 'message: transactional: 0 prefix: other, sz: 1 content:x' }, ...rows(pg17)]);
    expect(txs.map((t) => [t.xid, t.events.length])).toEqual([[0, 1], [740, 4]]);
  });
});
