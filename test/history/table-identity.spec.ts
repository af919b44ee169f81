import { tablePeriods, type SchemaLogRow } from '../../lib/history/table-identity';

const row = (cp: number, table: string, columns: Array<[number, string]>, extra: Partial<SchemaLogRow> = {}): SchemaLogRow => ({
  commit_position: String(cp),
  position: String(cp - 1),
  schema: 'public',
  table,
  columns: columns.map(([attnum, name]) => ({ attnum, name })),
  created: false,
  dropped: false,
  committed_at: `2026-01-01T00:00:${String(cp).padStart(2, '0')}.000000Z`,
  ...extra,
});

describe('tablePeriods', () => {
  it('adds nothing for a table with one name and no renamed column', () => {
    expect(tablePeriods([])).toBeUndefined();
    expect(tablePeriods([row(10, 't', [[1, 'id'], [2, 'n']]), row(20, 't', [[1, 'id'], [2, 'n'], [3, 'extra']])])).toBeUndefined();
  });

  it('maps names by attnum: a rename moves the value, a swap too, a dropped-and-readded name does not', () => {
    const periods = tablePeriods([row(10, 't', [[1, 'a'], [2, 'b'], [3, 'c']]), row(20, 't', [[1, 'b'], [2, 'a'], [4, 'c']])])!;
    expect(periods).toEqual([
      { schema: 'public', table: 't', from: undefined, to: { commitPosition: '20', position: '19' }, renamed: [['a', 'b'], ['b', 'a']], shadowed: ['c'] },
      { schema: 'public', table: 't', from: { commitPosition: '20', position: '19' }, renamed: [], shadowed: [] },
    ]);
  });

  it('follows table renames, and starts a table created where another of its name was dropped at its creation', () => {
    const periods = tablePeriods([row(10, 'old', [[1, 'id']], { created: true, predecessor_dropped_at: '2026-01-01T00:00:05.000000Z' }), row(30, 'new', [[1, 'id']])])!;
    expect(periods.map((p) => [p.table, p.from?.commitPosition, p.to?.commitPosition])).toEqual([
      ['old', '10', '30'],
      ['new', '30', undefined],
    ]);
    expect(periods[0].created).toEqual({ at: '2026-01-01T00:00:10.000000Z', predecessorDroppedAt: '2026-01-01T00:00:05.000000Z' });
    // Without a predecessor nothing else had the name: no bound, and nothing to add at all.
    expect(tablePeriods([row(10, 't', [[1, 'id']], { created: true })])).toBeUndefined();
  });

  it('merges consecutive entries that read alike, and ignores dropped marks', () => {
    const periods = tablePeriods([row(10, 't', [[1, 'id'], [2, 'n']]), row(20, 't', [[1, 'id'], [2, 'n2']]), row(30, 't', [[1, 'id'], [2, 'n2'], [3, 'x']]), row(40, 't', [], { dropped: true })])!;
    expect(periods.map((p) => [p.from?.commitPosition, p.to?.commitPosition, p.renamed])).toEqual([
      [undefined, '20', [['n', 'n2']]],
      ['20', undefined, []],
    ]);
  });
});
