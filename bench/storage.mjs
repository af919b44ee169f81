// Trail storage: bytes `changes` takes per change (heap, indexes, TOAST), beside the source
// table's own bytes per row, for small rows, wide rows and large contexts, under both context
// layouts: once per run of rows (the default) and on every row (`contextPerRow`, the layout
// before). One capture run per shape and layout into its own database, the layouts alternating
// in order from shape to shape; sizes are read after VACUUM, so they are what the trail keeps.
import { createRequire } from 'node:module';
import { connect, startWorker } from './capture.mjs';
import { absoluteRow, ratioRow } from './report.mjs';

const require = createRequire(import.meta.url);
const { bemiMigrationSql } = require('../dist/index.js');
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

const WIDE_COLUMNS = 30;
const SHAPES = [
  {
    name: 'small rows',
    ddl: `CREATE TABLE src (id bigint PRIMARY KEY, name text NOT NULL, amount int NOT NULL)`,
    insert: (from, n) => `INSERT INTO src SELECT g, 'customer ' || g, g % 1000 FROM generate_series(${from}, ${from + n - 1}) g`,
    update: (from, n) => `UPDATE src SET amount = amount + 1 WHERE id BETWEEN ${from} AND ${from + n - 1}`,
    context: { userId: 187234, endpoint: '/orders', method: 'POST' },
  },
  {
    name: 'wide rows (30 columns)',
    ddl: `CREATE TABLE src (id bigint PRIMARY KEY, ${Array.from({ length: WIDE_COLUMNS }, (_, i) => `c${i} ${i % 3 === 0 ? 'int' : 'text'}`).join(', ')})`,
    insert: (from, n) =>
      `INSERT INTO src SELECT g, ${Array.from({ length: WIDE_COLUMNS }, (_, i) => (i % 3 === 0 ? `g + ${i}` : `'value ' || g || ' of column ${i}'`)).join(', ')} FROM generate_series(${from}, ${from + n - 1}) g`,
    update: (from, n) => `UPDATE src SET c0 = c0 + 1 WHERE id BETWEEN ${from} AND ${from + n - 1}`,
    context: { userId: 187234, endpoint: '/orders', method: 'POST' },
  },
  {
    name: 'small rows, 2 kB context',
    ddl: `CREATE TABLE src (id bigint PRIMARY KEY, name text NOT NULL, amount int NOT NULL)`,
    insert: (from, n) => `INSERT INTO src SELECT g, 'customer ' || g, g % 1000 FROM generate_series(${from}, ${from + n - 1}) g`,
    update: (from, n) => `UPDATE src SET amount = amount + 1 WHERE id BETWEEN ${from} AND ${from + n - 1}`,
    context: { userId: 187234, endpoint: '/orders', method: 'POST', trace: Object.fromEntries(Array.from({ length: 40 }, (_, i) => [`span${i}`, `frame-${i}-`.padEnd(40, 'x')])) },
  },
];

const LAYOUTS = { shared: { contextPerRow: false }, perRow: { contextPerRow: true } };

async function measureShape(adminUrl, shape, index, layout, rows, log) {
  const name = `bench_storage_${index}_${layout.toLowerCase()}`;
  const admin = await connect(adminUrl);
  await admin.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`);
  await admin.query(`CREATE DATABASE ${name}`);
  await admin.end();
  const url = new URL(adminUrl);
  url.pathname = `/${name}`;
  const db = await connect(url.toString());
  await db.query(shape.ddl);
  await db.query(bemiMigrationSql().up);
  const worker = startWorker(url.toString(), LAYOUTS[layout]);
  await worker.ready;
  const comment = `/*Bemi ${JSON.stringify(shape.context).replace(/\*/g, '\\u002a')} Bemi*/ `;
  const perStatement = 100;
  // Each row once inserted and once updated: half the changes are CREATEs, half UPDATEs (with both images).
  for (const step of [shape.insert, shape.update]) {
    for (let from = 1; from <= rows; from += perStatement) await db.query(comment + step(from, Math.min(perStatement, rows - from + 1)));
  }
  const expected = 2 * rows;
  for (const deadline = Date.now() + 300_000; ; ) {
    const [{ n }] = (await db.query(`SELECT count(*)::int AS n FROM changes WHERE "table" = 'src'`)).rows;
    if (n >= expected) break;
    if (Date.now() > deadline) throw new Error(`capture stalled at ${n}/${expected} changes`);
    await sleep(200);
  }
  await worker.stop();
  await db.query('VACUUM ANALYZE changes');
  await db.query('VACUUM ANALYZE src');
  const [sizes] = (
    await db.query(`SELECT pg_relation_size('changes')::float8 AS heap, pg_indexes_size('changes')::float8 AS indexes,
        (pg_total_relation_size('changes') - pg_relation_size('changes') - pg_indexes_size('changes'))::float8 AS toast,
        pg_total_relation_size('src')::float8 AS source,
        (SELECT count(*) FROM changes)::float8 AS changes,
        (SELECT string_agg(format('%s %s', i.indexrelid::regclass, pg_size_pretty(pg_relation_size(i.indexrelid))), ', ' ORDER BY pg_relation_size(i.indexrelid) DESC)
           FROM pg_index i WHERE i.indrelid = 'changes'::regclass) AS breakdown`)
  ).rows;
  await db.end();
  log(`${shape.name}, ${layout}: ${sizes.changes} changes; indexes ${sizes.breakdown}`);
  const per = (bytes) => bytes / sizes.changes;
  return { total: per(sizes.heap + sizes.indexes + sizes.toast), heap: per(sizes.heap), indexes: per(sizes.indexes), toast: per(sizes.toast), sourcePerRow: sizes.source / rows, breakdown: sizes.breakdown, changes: sizes.changes };
}

/** `a / b / c B` of a measurement, and its largest indexes per change. */
function parts(m) {
  const largest = m.breakdown.split(', ').slice(0, 3).join(', ');
  return `heap / indexes / TOAST ${Math.round(m.heap)} / ${Math.round(m.indexes)} / ${Math.round(m.toast)} B (largest indexes: ${largest})`;
}

export async function runStorage({ adminUrl, quick, log }) {
  const rows = quick ? 10_000 : 50_000;
  const out = [];
  for (const [i, shape] of SHAPES.entries()) {
    const order = i % 2 ? ['perRow', 'shared'] : ['shared', 'perRow'];
    const m = {};
    for (const layout of order) m[layout] = await measureShape(adminUrl, shape, i, layout, rows, log);
    out.push(
      ratioRow(`trail bytes per change, ${shape.name}`, 'B', m.shared.total, m.perRow.total, 'context per row', '(measured)', () => null,
        `source table: ${Math.round(m.shared.sourcePerRow)} B/row (heap + indexes)`),
      absoluteRow(`trail parts per change, ${shape.name}`, 'B', m.shared.heap, '(diagnostic)', () => null, `once per run: ${parts(m.shared)}; per row: ${parts(m.perRow)}`, m.perRow.heap, 'context per row'),
    );
  }
  return out;
}
