// History reads that return context, under both context layouts side by side: every row holding
// its context (contextPerRow, the layout before context_seq) and a transaction's rows sharing
// their holder's (the default). The same trail is seeded into two databases — 1,000,000 changes in
// transactions of 10 rows with one context each (100,000 in quick mode) — and each figure is
// timed alternating between them. at() and tableAt() never read context, so they are not here.
import { createRequire } from 'node:module';
import { performance } from 'node:perf_hooks';
import { median, ratioRow } from './report.mjs';

const require = createRequire(import.meta.url);
const { Client } = require('pg');
const { MikroORM } = require('@mikro-orm/core');
const { PostgreSqlDriver } = require('@mikro-orm/postgresql');
const { BemiHistory } = require('../dist/history/bemi-history.js');
const { bemiChangesTableSql } = require('../dist/trail/changes-table.js');

const ROWS_PER_TRANSACTION = 10;
const RECORDS = 10_000;
const USERS = 1000;
const START = Date.UTC(2026, 0, 1);

async function seed(url, transactions, shared) {
  const c = new Client({ connectionString: url });
  await c.connect();
  try {
    await c.query(`CREATE TABLE todo (id int PRIMARY KEY, task text NOT NULL);
      ${bemiChangesTableSql().up}
      INSERT INTO _bemi_capture_state (slot_name, database, started_at) VALUES ('bench', current_database(), to_timestamp(${START / 1000}) - interval '1 hour');
      INSERT INTO todo SELECT r, 'task ' || r FROM generate_series(1, ${RECORDS}) r;`);
    // Row i of transaction t changes record (t * 10 + i) mod RECORDS; the context is the transaction's.
    await c.query(`INSERT INTO changes (primary_key, before, after, context, context_seq, database, schema, "table", operation, committed_at, queued_at, transaction_id, position, commit_position, seq)
      SELECT k::text, jsonb_build_object('id', k, 'task', 'task ' || k), jsonb_build_object('id', k, 'task', 'task ' || k || ' v' || t),
             ${shared ? 'CASE WHEN i = 0 THEN ctx END' : 'ctx'}, ${shared ? '0' : 'NULL'},
             current_database(), 'public', 'todo', 'UPDATE', ts, ts, t, t * 1000 + i, t * 1000 + 500, i
      FROM generate_series(0, ${transactions - 1}) t, generate_series(0, ${ROWS_PER_TRANSACTION - 1}) i,
           LATERAL (SELECT (t * ${ROWS_PER_TRANSACTION} + i) % ${RECORDS} + 1 AS k,
                           jsonb_build_object('userId', t % ${USERS}, 'endpoint', '/todo/import', 'method', 'POST') AS ctx,
                           to_timestamp(${START / 1000}) + t * interval '10 milliseconds' AS ts) x
      ORDER BY t, i`);
    await c.query('VACUUM ANALYZE changes');
    const [{ bytes, n }] = (await c.query(`SELECT pg_total_relation_size('changes')::float8 AS bytes, count(*)::int AS n FROM changes`)).rows;
    return bytes / n;
  } finally {
    await c.end();
  }
}

async function time(fn) {
  const t0 = performance.now();
  await fn();
  return performance.now() - t0;
}

export async function runContextLayouts({ adminUrl, quick, log }) {
  const transactions = quick ? 10_000 : 100_000;
  const layouts = [
    { name: 'shared', shared: true },
    { name: 'per_row', shared: false },
  ];
  const admin = new Client({ connectionString: adminUrl });
  await admin.connect();
  const orms = [];
  try {
    for (const layout of layouts) {
      const db = `bench_context_${layout.name}`;
      await admin.query(`DROP DATABASE IF EXISTS ${db} WITH (FORCE)`);
      await admin.query(`CREATE DATABASE ${db}`);
      const url = new URL(adminUrl);
      url.pathname = `/${db}`;
      log(`context layouts: seeding ${(transactions * ROWS_PER_TRANSACTION).toLocaleString('en-US')} changes (${layout.name}) ...`);
      layout.bytes = await seed(url.toString(), transactions, layout.shared);
      const orm = await MikroORM.init({ driver: PostgreSqlDriver, clientUrl: url.toString(), entities: [], discovery: { warnWhenNoEntities: false }, allowGlobalContext: true, pool: { min: 1, max: 2 } });
      orms.push(orm);
      layout.history = BemiHistory.create(orm);
      layout.times = { tablePage: [], contextPage: [], contextAll: [], record: [], transaction: [] };
    }
    const figures = {
      tablePage: (h) => h.changes('todo', { limit: 1000 }),
      contextPage: (h, i) => h.changes({ context: { userId: i % USERS }, limit: 50 }),
      contextAll: (h, i) => h.changes({ context: { userId: i % USERS }, limit: 10_000 }),
      record: (h, i) => h.changes('todo', { primaryKey: 1 + ((i * 7919) % RECORDS), limit: 100 }),
      transaction: async (h, i) => {
        const [first] = await h.changes({ context: { userId: i % USERS }, limit: 1 });
        return h.transaction(first);
      },
    };
    // Warm-up, then alternating order per iteration.
    for (let i = 0; i < 20; i++) for (const l of layouts) for (const f of Object.values(figures)) await f(l.history, i);
    const iterations = quick ? 60 : 200;
    for (let i = 0; i < iterations; i++) {
      const order = i % 2 ? layouts : [...layouts].reverse();
      for (const [name, f] of Object.entries(figures)) for (const l of order) l.times[name].push(await time(() => f(l.history, i)));
    }
    // Both layouts give the same answers.
    const sample = async (l) => JSON.stringify((await l.history.changes({ context: { userId: 7 }, limit: 10_000 })).map((c) => [c.commitPosition, c.seq, c.context]));
    if ((await sample(layouts[0])) !== (await sample(layouts[1]))) throw new Error('context layouts: the two layouts answered differently');
  } finally {
    for (const orm of orms) await orm.close(true);
    await admin.end();
  }
  const [shared, perRow] = layouts;
  const size = `${(transactions * ROWS_PER_TRANSACTION).toLocaleString('en-US')} changes, ${ROWS_PER_TRANSACTION} per transaction`;
  const row = (figure, name, note) =>
    ratioRow(`context layouts: ${figure} p50`, 'ms', median(shared.times[name]), median(perRow.times[name]), 'per-row context', 'report', () => true, `${note}; ${size}`);
  return [
    ratioRow('context layouts: trail bytes per change', 'B', shared.bytes, perRow.bytes, 'per-row context', '< 1× per-row', (r) => r < 1, `heap + indexes + TOAST; ${size}`),
    row('changes(table), page of 1,000', 'tablePage', 'stream order'),
    row('changes({ context }), first 50', 'contextPage', '{ userId }, every table'),
    row('changes({ context }), all matches', 'contextAll', `${ROWS_PER_TRANSACTION * (transactions / USERS)} rows per userId`),
    row("changes(table, { primaryKey }), a record's trail", 'record', '100 rows at most'),
    row('transaction(change)', 'transaction', `${ROWS_PER_TRANSACTION} rows, after a context lookup`),
  ];
}
