// Write overhead and WAL growth of context capture, through MikroORM, side by side:
// untracked (no hook, no trigger) vs nestjs-bemi (hook + statement trigger) vs a Bemi-style
// baseline (comment appended to the END of the statement, row-level trigger that searches the
// whole query text and emits one message per row) — written here from the public description.
import { createRequire } from 'node:module';
import { performance } from 'node:perf_hooks';
import { median, ratioRow } from './report.mjs';

const require = createRequire(import.meta.url);
const { MikroORM, EntitySchema } = require('@mikro-orm/core');
const { PostgreSqlDriver } = require('@mikro-orm/postgresql');
const { Client } = require('pg');
const bemi = require('../dist/index.js');

/** The entity and table every write shape writes (bench/write-profile.mjs uses them too). */
export class Item {}
export const ItemSchema = new EntitySchema({
  class: Item,
  name: 'Item',
  tableName: 'bench_item',
  properties: {
    id: { type: 'number', primary: true, autoincrement: true },
    name: { type: 'string', columnType: 'text' },
    payload: { type: 'string', columnType: 'text' },
    counter: { type: 'number', default: 0 },
  },
});

export const DDL = `CREATE TABLE bench_item (id serial PRIMARY KEY, name text NOT NULL, payload text NOT NULL, counter int NOT NULL DEFAULT 0);
ALTER TABLE bench_item REPLICA IDENTITY FULL;`;

// The Bemi-style baseline: per-row trigger, comment looked up anywhere in the query text.
const BEMI_STYLE_SQL = `
CREATE FUNCTION bench_row_context() RETURNS trigger LANGUAGE plpgsql AS $f$
DECLARE found text[];
BEGIN
  found := regexp_match(current_query(), '/\\*Bemi (.*) Bemi\\*/');
  IF found IS NOT NULL THEN
    PERFORM pg_logical_emit_message(true, '_bemi', found[1]);
  END IF;
  IF TG_OP = 'DELETE' THEN RETURN OLD; END IF;
  RETURN NEW;
END $f$;
CREATE TRIGGER bench_row_context BEFORE INSERT OR UPDATE OR DELETE ON bench_item FOR EACH ROW EXECUTE FUNCTION bench_row_context();`;

// As the default HTTP context is stored: the object and its params frozen (the hook reuses its encoding).
export const CONTEXT = Object.freeze({ endpoint: '/items/:id', method: 'POST', params: Object.freeze({ id: '42' }), userId: 187234 });
export const PAYLOAD = 'x'.repeat(64);

/** Runs `sql` on a connection of its own (one statement text; its rows). */
export async function adminQuery(url, sql) {
  const c = new Client({ connectionString: url });
  await c.connect();
  try {
    return (await c.query(sql)).rows;
  } finally {
    await c.end();
  }
}

/**
 * BEMI_BENCH_SYNCHRONOUS_COMMIT=off takes the disk's flush out of every committed unit (for all
 * variants alike): a diagnostic run that shows the CPU cost the commit's fsync otherwise hides
 * inside its own variance. Figures of such a run say so in their notes.
 */
const SYNCHRONOUS_COMMIT = process.env.BEMI_BENCH_SYNCHRONOUS_COMMIT;
if (SYNCHRONOUS_COMMIT !== undefined && !['on', 'off', 'local'].includes(SYNCHRONOUS_COMMIT)) {
  throw new Error(`BEMI_BENCH_SYNCHRONOUS_COMMIT must be on, off or local, got ${JSON.stringify(SYNCHRONOUS_COMMIT)}`);
}

async function makeVariant(adminUrl, name) {
  const database = `bench_${name.replace(/-/g, '_')}`;
  await adminQuery(adminUrl, `DROP DATABASE IF EXISTS ${database} WITH (FORCE)`);
  await adminQuery(adminUrl, `CREATE DATABASE ${database}`);
  if (SYNCHRONOUS_COMMIT) await adminQuery(adminUrl, `ALTER DATABASE ${database} SET synchronous_commit = ${SYNCHRONOUS_COMMIT}`);
  const url = new URL(adminUrl);
  url.pathname = `/${database}`;
  await adminQuery(url.toString(), DDL);
  const orm = await MikroORM.init({ driver: PostgreSqlDriver, clientUrl: url.toString(), entities: [ItemSchema], pool: { min: 1, max: 2 } });
  let wrap = (fn) => fn();
  if (name === 'nestjs-bemi') {
    await adminQuery(url.toString(), bemi.bemiMigrationSql({ replicaIdentityFull: true }).up);
    const store = new bemi.BemiContextStore();
    bemi.installBemiQueryHook(orm, { store });
    wrap = (fn) => store.run(CONTEXT, fn);
  } else if (name === 'bemi-style') {
    await adminQuery(url.toString(), BEMI_STYLE_SQL);
    const previous = orm.config.get('onQuery');
    const comment = ` /*Bemi ${JSON.stringify(CONTEXT)} Bemi*/`;
    orm.config.set('onQuery', (sql, params) => {
      const out = previous(sql, params);
      return /insert|update|delete/i.test(out) ? out + comment : out;
    });
  }
  return { name, url: url.toString(), orm, wrap };
}

// Rows 1..SEED exist for the shapes that change existing rows (upserts and the QueryBuilder update).
const SEED = 5000;
const WORKLOADS = [
  { key: 'flush-1', label: 'single-row flush', rowsPerOp: 1, ops: [200, 600], target: 0.95,
    run: (em) => { em.create(Item, { name: 'one', payload: PAYLOAD }); return em.flush(); } },
  { key: 'flush-100', label: '100-row flush', rowsPerOp: 100, ops: [20, 60], target: 0.95,
    run: (em) => { for (let i = 0; i < 100; i++) em.create(Item, { name: `n${i}`, payload: PAYLOAD }); return em.flush(); } },
  { key: 'insertMany-1000', label: '1,000-row insertMany', rowsPerOp: 1000, ops: [4, 12], target: 0.95,
    run: (em) => em.insertMany(Item, Array.from({ length: 1000 }, (_, i) => ({ name: `m${i}`, payload: PAYLOAD, counter: 0 }))) },
  { key: 'update-100', label: '100-row nativeUpdate', rowsPerOp: 100, ops: [20, 60], target: 0.95,
    run: (em, i, base) => em.nativeUpdate(Item, { id: { $gte: base + (i % 50) * 100, $lt: base + (i % 50) * 100 + 100 } }, { counter: i + 1 }) },
  { key: 'delete-100', label: '100-row nativeDelete', rowsPerOp: 100, ops: [20, 60], target: 0.95,
    run: (em, i, base) => em.nativeDelete(Item, { id: { $gte: base + i * 100, $lt: base + i * 100 + 100 } }) },
  // insert ... on conflict ("id") do update, every row a conflict (an update of an existing row)
  { key: 'upsertMany-100', label: '100-row upsertMany', rowsPerOp: 100, ops: [20, 60], target: 0.95,
    run: (em, i, base) => em.upsertMany(Item, Array.from({ length: 100 }, (_, k) => ({ id: base + (i % 50) * 100 + k, name: `u${k}`, payload: PAYLOAD, counter: i + 1 }))) },
  { key: 'qb-update-100', label: '100-row QueryBuilder update', rowsPerOp: 100, ops: [20, 60], target: 0.95,
    run: (em, i, base) => em.createQueryBuilder(Item).update({ counter: i + 1 }).where({ id: { $gte: base + (i % 50) * 100, $lt: base + (i % 50) * 100 + 100 } }).execute() },
];
const SEEDED = new Set(['update-100', 'upsertMany-100', 'qb-update-100']);

async function walBytes(variant, fn) {
  const [{ lsn: before }] = await adminQuery(variant.url, 'SELECT pg_current_wal_insert_lsn() AS lsn');
  await fn();
  const [{ bytes }] = await adminQuery(variant.url, `SELECT pg_wal_lsn_diff(pg_current_wal_insert_lsn(), '${before}')::bigint AS bytes`);
  return Number(bytes);
}

/** Rows to update/delete exist before the timed part; returns the first id of the block. */
async function seed(variant, rows) {
  const em = variant.orm.em.fork();
  const ids = [];
  for (let done = 0; done < rows; done += 1000) {
    const batch = Math.min(1000, rows - done);
    ids.push(...(await em.insertMany(Item, Array.from({ length: batch }, (_, i) => ({ name: `s${i}`, payload: PAYLOAD, counter: 0 })))));
  }
  return Math.min(...ids.map(Number));
}

// Each variant's ops of a repetition run in SLICES slices, interleaved with the other variants'
// (order rotating), so a neighbour's burst or autovacuum lands on every variant alike; the ratio
// of a repetition is then a paired comparison, and the row reports the median of those ratios.
const SLICES = 5;

export async function runWriteOverhead({ adminUrl, quick, repetitions, log }) {
  const variants = [];
  for (const name of ['untracked', 'nestjs-bemi', 'bemi-style']) variants.push(await makeVariant(adminUrl, name));
  const samples = {}; // samples[workload][variant] = { opsPerSec: [], walPerRow: [] }
  try {
    for (let rep = 0; rep < repetitions; rep++) {
      for (const w of WORKLOADS) {
        const ops = w.ops[quick ? 0 : 1];
        const perSlice = Math.ceil(ops / SLICES);
        const state = new Map();
        for (const v of variants) {
          const base = SEEDED.has(w.key) ? await seed(v, SEED) : w.key === 'delete-100' ? await seed(v, perSlice * SLICES * 100) : 0;
          state.set(v, { base, em: v.orm.em.fork(), seconds: 0, wal: 0 });
        }
        for (let slice = 0; slice < SLICES; slice++) {
          // Rotate the order every slice and repetition so drift (autovacuum, caches) hits every variant alike.
          const order = variants.map((_, i) => variants[(i + slice + rep) % variants.length]);
          for (const v of order) {
            const st = state.get(v);
            st.wal += await walBytes(v, async () => {
              const start = performance.now();
              for (let i = slice * perSlice; i < (slice + 1) * perSlice; i++) {
                await v.wrap(() => w.run(st.em, i, st.base));
                st.em.clear();
              }
              st.seconds += (performance.now() - start) / 1000;
            });
          }
        }
        for (const v of variants) {
          const st = state.get(v);
          const s = ((samples[w.key] ??= {})[v.name] ??= { opsPerSec: [], walPerRow: [] });
          s.opsPerSec.push((perSlice * SLICES) / st.seconds);
          s.walPerRow.push(st.wal / (perSlice * SLICES * w.rowsPerOp));
        }
      }
      log(`write overhead: repetition ${rep + 1}/${repetitions} done`);
      for (const v of variants) {
        await adminQuery(v.url, 'TRUNCATE bench_item');
        await adminQuery(v.url, 'VACUUM bench_item'); // not in the same implicit transaction
      }
    }
  } finally {
    for (const v of variants) await v.orm.close(true);
  }

  /** Median over repetitions of `variant / untracked` within each repetition (paired). */
  const pairedRatio = (key, variant, field) => median(samples[key][variant][field].map((x, i) => x / samples[key].untracked[field][i]));
  const rows = [];
  for (const w of WORKLOADS) {
    const m = (variant, field) => median(samples[w.key][variant][field]);
    const plain = m('untracked', 'opsPerSec');
    const spread = samples[w.key]['nestjs-bemi'].opsPerSec.map((x, i) => x / samples[w.key].untracked.opsPerSec[i]);
    const row = ratioRow(`write ${w.label} (ops/s)`, 'ops/s', m('nestjs-bemi', 'opsPerSec'), plain, 'untracked', `≥ ${w.target}× untracked`, (r) => r >= w.target,
      `${SYNCHRONOUS_COMMIT ? `synchronous_commit=${SYNCHRONOUS_COMMIT}; ` : ''}ratio = median of the ${spread.length} per-repetition ratios (${Math.min(...spread).toFixed(2)}–${Math.max(...spread).toFixed(2)}); ` +
        `Bemi-style row trigger: ${m('bemi-style', 'opsPerSec').toFixed(0)} ops/s (${pairedRatio(w.key, 'bemi-style', 'opsPerSec').toFixed(2)}× untracked)`);
    row.ratio = pairedRatio(w.key, 'nestjs-bemi', 'opsPerSec');
    row.met = row.ratio >= w.target;
    rows.push(row);
  }
  for (const w of WORKLOADS) {
    const m = (variant) => median(samples[w.key][variant].walPerRow);
    const target = w.rowsPerOp > 1 ? 1.05 : null;
    rows.push(ratioRow(`WAL ${w.label} (bytes/row)`, 'B/row', m('nestjs-bemi'), m('untracked'), 'untracked', target ? `≤ ${target}× untracked` : 'report', (r) => (target ? r <= target : true),
      `Bemi-style: ${m('bemi-style').toFixed(0)} B/row (${(m('bemi-style') / m('untracked')).toFixed(2)}× untracked)`));
  }
  return rows;
}
