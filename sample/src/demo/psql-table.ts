/**
 * Renders rows the way `psql` prints a query result in its default aligned format, so the demo's
 * output reads like `SELECT ... FROM changes` typed at a psql prompt. jsonb values are written as
 * PostgreSQL writes jsonb: keys ordered by length then bytes, `", "` and `": "` separators.
 */
export function jsonbText(value: unknown): string {
  if (value === null || typeof value !== 'object') return JSON.stringify(value) ?? 'null';
  if (Array.isArray(value)) return `[${value.map(jsonbText).join(', ')}]`;
  const keys = Object.keys(value).sort((a, b) => Buffer.byteLength(a) - Buffer.byteLength(b) || Buffer.compare(Buffer.from(a), Buffer.from(b)));
  return `{${keys.map((k) => `${JSON.stringify(k)}: ${jsonbText((value as Record<string, unknown>)[k])}`).join(', ')}}`;
}

/** timestamptz as psql shows it in UTC: `2023-12-11 17:09:09.123456+00` (trailing zeros trimmed). */
export function timestamptzText(iso: string): string {
  const m = /^(\d{4}-\d{2}-\d{2})T(\d{2}:\d{2}:\d{2})(?:\.(\d+))?(?:Z|\+00:00)$/.exec(iso);
  if (!m) return iso;
  const fraction = (m[3] ?? '').replace(/0+$/, '');
  return `${m[1]} ${m[2]}${fraction ? `.${fraction}` : ''}+00`;
}

export type Cell = string | number | null;

export function psqlTable(columns: string[], rows: Cell[][]): string {
  const text = rows.map((row) => row.map((cell) => (cell === null ? '' : String(cell))));
  const widths = columns.map((c, i) => Math.max(c.length, ...text.map((row) => row[i].length)));
  const center = (s: string, w: number) => {
    const left = Math.floor((w - s.length) / 2);
    return ' '.repeat(left) + s + ' '.repeat(w - s.length - left);
  };
  const lines = [
    ' ' + columns.map((c, i) => center(c, widths[i])).join(' | ').trimEnd(),
    widths.map((w) => '-'.repeat(w + 2)).join('+'),
    ...text.map((row) => ' ' + row.map((cell, i) => (typeof rows[0]?.[i] === 'number' ? cell.padStart(widths[i]) : cell.padEnd(widths[i]))).join(' | ').trimEnd()),
    `(${rows.length} ${rows.length === 1 ? 'row' : 'rows'})`,
  ];
  return lines.join('\n');
}
