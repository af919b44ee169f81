// Result rows and their rendering: one table (figure, ours, baseline, ratio, target, met?),
// printed and written as JSON and Markdown under bench/results/.
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

/**
 * @typedef {{ figure: string, unit: string, ours: number, baseline: number | null, baselineName: string,
 *   ratio: number | null, target: string, met: boolean | null, note?: string }} Row
 */

export const median = (values) => {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = sorted.length >> 1;
  return sorted.length % 2 ? sorted[mid] : (sorted[mid - 1] + sorted[mid]) / 2;
};

export const percentile = (values, p) => {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1))];
};

/** A ratio row: `ours / baseline`, met when the ratio satisfies `check`. */
export function ratioRow(figure, unit, ours, baseline, baselineName, target, check, note) {
  const ratio = baseline ? ours / baseline : null;
  return { figure, unit, ours, baseline, baselineName, ratio, target, met: ratio === null ? null : check(ratio), note };
}

/** An absolute row: no baseline, met when `check(ours)`. */
export function absoluteRow(figure, unit, ours, target, check, note, baseline = null, baselineName = '') {
  return { figure, unit, ours, baseline, baselineName, ratio: baseline ? ours / baseline : null, target, met: check(ours), note };
}

const fmt = (n) => (n === null || n === undefined ? '—' : Math.abs(n) >= 100 ? Math.round(n).toLocaleString('en-US') : Number(n.toPrecision(3)).toString());

export function toMarkdown(rows, meta) {
  const lines = [
    `Run ${meta.startedAt} on ${meta.machine}; PostgreSQL ${meta.postgres}` +
      (meta.versions ? `; NestJS ${meta.versions.nest}, MikroORM ${meta.versions.mikroOrm}, nestjs-cls ${meta.versions.nestjsCls}` : '') +
      `; ${meta.mode} mode (${meta.repetitions} alternating repetitions, medians).` +
      (meta.refreshed ? ` Refreshed: ${meta.refreshed.map((r) => `${r.suites.join(', ')} at ${r.at}`).join('; ')}.` : ''),
    '',
    '| figure | ours | baseline | ratio | target | met? |',
    '|---|---:|---:|---:|---|:-:|',
    ...rows.map((r) => `| ${r.figure} | ${fmt(r.ours)} ${r.unit} | ${r.baseline === null ? '—' : `${fmt(r.baseline)} ${r.unit} (${r.baselineName})`} | ${r.ratio === null ? '—' : `${r.ratio.toFixed(2)}×`} | ${r.target} | ${r.met === null ? '—' : r.met ? 'yes' : 'no'} |`),
  ];
  const notes = rows.filter((r) => r.note).map((r) => `- ${r.figure}: ${r.note}`);
  if (notes.length) lines.push('', ...notes);
  return lines.join('\n') + '\n';
}

export function printTable(rows) {
  const header = ['figure', 'ours', 'baseline', 'ratio', 'target', 'met?'];
  const body = rows.map((r) => [
    r.figure,
    `${fmt(r.ours)} ${r.unit}`,
    r.baseline === null ? '—' : `${fmt(r.baseline)} (${r.baselineName})`,
    r.ratio === null ? '—' : `${r.ratio.toFixed(2)}x`,
    r.target,
    r.met === null ? '—' : r.met ? 'yes' : 'NO',
  ]);
  const widths = header.map((h, i) => Math.max(h.length, ...body.map((row) => row[i].length)));
  const line = (cells) => cells.map((c, i) => c.padEnd(widths[i])).join(' | ');
  console.log(line(header));
  console.log(widths.map((w) => '-'.repeat(w)).join('-|-'));
  for (const row of body) console.log(line(row));
}

/** With `merge` (a run of some suites only), rows of the same figures replace the stored ones. */
export function writeResults(dir, rows, meta, merge = false) {
  mkdirSync(dir, { recursive: true });
  // The second stack's figures sit beside the lockfile stack's (npm run test:stack-next -- --script bench).
  const name = `${meta.mode === 'quick' ? 'latest-quick' : 'latest'}${meta.stack === 'next' ? '-next' : ''}`;
  const file = join(dir, `${name}.json`);
  if (merge && existsSync(file)) {
    const stored = JSON.parse(readFileSync(file, 'utf8'));
    const fresh = new Map(rows.map((r) => [r.figure, r]));
    const kept = stored.rows.map((r) => fresh.get(r.figure) ?? r);
    rows = [...kept, ...rows.filter((r) => !stored.rows.some((s) => s.figure === r.figure))];
    // Each suite keeps its latest refresh only.
    const earlier = (stored.meta.refreshed ?? [])
      .map((r) => ({ ...r, suites: r.suites.filter((suite) => !meta.suites.includes(suite)) }))
      .filter((r) => r.suites.length > 0);
    meta = { ...stored.meta, refreshed: [...earlier, { at: meta.startedAt, suites: meta.suites }] };
  }
  writeFileSync(join(dir, `${name}.json`), JSON.stringify({ meta, rows }, null, 2) + '\n');
  writeFileSync(join(dir, `${name}.md`), toMarkdown(rows, meta));
  return join(dir, `${name}.md`);
}
