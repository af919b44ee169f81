import { recordAtSql } from '../../lib/history/time-travel.sql';
import type { LiveTable, TrailTables } from '../../lib/history/trail.sql';
import { positional } from '../../lib/history/prepared-reader';

describe('PreparedReader statement text', () => {
  const loc: TrailTables = {
    changes: '"public"."changes"',
    captureState: '"public"."_bemi_capture_state"',
    captureStateName: { schema: 'public', table: '_bemi_capture_state' },
    database: null,
  };
  const live: LiveTable = {
    schema: 'public',
    table: 'order_line',
    keyColumns: [
      { name: 'order_id', type: 'integer', kind: 'number' },
      { name: 'product_code', type: 'text', kind: 'string' },
    ],
    hasNonKeyColumns: true,
  };

  it('numbers placeholders in order and keeps escaped question marks literal', () => {
    expect(positional('SELECT ? AS a, "we\\?ird" FROM t WHERE x = ? AND y = ?')).toBe('SELECT $1 AS a, "we?ird" FROM t WHERE x = $2 AND y = $3');
  });

  it('gives at() the same text for every key and moment, so values never prepare new statements', () => {
    const a = recordAtSql(loc, live, ['1', 'A'], '2024-03-01T10:00:00.000999Z');
    const b = recordAtSql(loc, live, ['2', "B'; --"], '2025-01-01T00:00:00.123456Z');
    expect(b.sql).toBe(a.sql);
    expect(b.params).not.toEqual(a.params);
    expect(b.params).toContain("B'; --");
    expect(positional(a.sql).match(/\$\d+/g)).toHaveLength(a.params.length);
  });
});
