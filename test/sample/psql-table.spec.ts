import { jsonbText, psqlTable, timestamptzText } from '../../sample/src/demo/psql-table';

describe('psql-style rendering for the demo', () => {
  it('writes jsonb the way PostgreSQL does: keys by length then bytes', () => {
    expect(jsonbText({ task: 'Sleep', id: 26, isCompleted: false })).toBe('{"id": 26, "task": "Sleep", "isCompleted": false}');
    expect(jsonbText({})).toBe('{}');
    expect(jsonbText({ b: [1, { z: null, a: 'x' }], a: 1 })).toBe('{"a": 1, "b": [1, {"a": "x", "z": null}]}');
  });

  it('writes timestamptz as psql shows UTC values', () => {
    expect(timestamptzText('2023-12-11T17:09:09.000Z')).toBe('2023-12-11 17:09:09+00');
    expect(timestamptzText('2023-12-11T17:09:09.120Z')).toBe('2023-12-11 17:09:09.12+00');
  });

  it('aligns columns like psql', () => {
    expect(psqlTable(['primary_key', 'operation'], [['26', 'CREATE'], ['27', 'DELETE']])).toBe(
      [' primary_key | operation', '-------------+-----------', ' 26          | CREATE', ' 27          | DELETE', '(2 rows)'].join('\n'),
    );
  });
});
