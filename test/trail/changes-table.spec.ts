import { bemiChangesPartitionSql, bemiChangesTableSql } from '../../lib';
import { createTestDatabase, type TestDatabase } from '../support/database';

describe('bemiChangesTableSql({ partitionByMonth })', () => {
  let db: TestDatabase;
  beforeAll(async () => {
    db = await createTestDatabase('changes_partitioned');
  });
  afterAll(() => db?.drop());

  it('creates a month-partitioned changes table with a DEFAULT partition; month partitions route by committed_at (UTC)', async () => {
    await db.query(bemiChangesTableSql({ partitionByMonth: true }).up);
    await db.query(bemiChangesTableSql({ partitionByMonth: true }).up); // idempotent
    await db.query(bemiChangesPartitionSql('2026-12'));
    await db.query(bemiChangesPartitionSql('2026-12'));
    const insert = (at: string, seq: number) =>
      db.query(
        `INSERT INTO changes (database, schema, "table", operation, committed_at, queued_at, transaction_id, position, commit_position, seq)
         VALUES ('d', 'public', 't', 'CREATE', $1, $1, 1, 1, 1, $2) RETURNING tableoid::regclass::text AS part`,
        [at, seq],
      );
    expect(await insert('2026-12-01T00:00:00Z', 0)).toEqual([{ part: 'changes_2026_12' }]);
    expect(await insert('2026-12-31T23:59:59.999999Z', 1)).toEqual([{ part: 'changes_2026_12' }]);
    expect(await insert('2027-01-01T00:00:00Z', 2)).toEqual([{ part: 'changes_default' }]);
    // The dedupe key still rejects a re-delivered change (same commit position, seq, commit time).
    await expect(insert('2026-12-01T00:00:00Z', 0)).rejects.toThrow(/duplicate key value violates unique constraint "changes_2026_12_commit_position_seq_committed_at_key"/);
    expect(() => bemiChangesPartitionSql('2026-13')).toThrow(/month must look like "2026-01"/);
  });
});
