// History query speed on 1,000,000 changes (issue 5): at(), changes() first page, context filter
// and tableAt() of a 10,000-row table, through BemiHistory itself (MikroORM included).
// Standalone: `npm run build && node bench/history.mjs [--quick] [--explain]` (starts its own
// embedded PostgreSQL unless BEMI_BENCH_DATABASE_URL is set). Also exports `runHistory` in the
// suite shape of bench/run.mjs.
import { createRequire } from 'node:module';
import { performance } from 'node:perf_hooks';
import { absoluteRow, median, percentile, printTable } from './report.mjs';

const require = createRequire(import.meta.url);
const { Client } = require('pg');
const { EntitySchema, MikroORM } = require('@mikro-orm/core');
const { PostgreSqlDriver } = require('@mikro-orm/postgresql');
const { BemiHistory } = require('../dist/history/bemi-history.js');
const { recordAtSql } = require('../dist/history/time-travel.sql.js');
const { tableAtSql } = require('../dist/history/table-at.sql.js');
const { changesSql } = require('../dist/history/history-reader.sql.js');
const { bemiChangesTableSql } = require('../dist/trail/changes-table.js');
const { positional } = require('../dist/history/prepared-reader.js');

class Todo {}
class Item {}
const TodoSchema = new EntitySchema({
  class: Todo,
  tableName: 'todo',
  properties: {
    id: { type: 'number', primary: true },
    task: { type: 'string', columnType: 'text' },
    isCompleted: { type: 'boolean' },
    views: { type: 'integer' },
  },
});
const ItemSchema = new EntitySchema({
  class: Item,
  tableName: 'item',
  properties: { id: { type: 'number', primary: true }, name: { type: 'string', columnType: 'text' }, price: { type: 'decimal', columnType: 'numeric(10,2)' } },
});

// Where the seeded trail and the todo table are, as BemiHistory resolves them (for the SQL-only rows and plans).
const loc = { changes: '"public"."changes"', captureState: '"public"."_bemi_capture_state"', captureStateName: { schema: 'public', table: '_bemi_capture_state' }, database: null };
const live = { schema: 'public', table: 'todo', keyColumns: [{ name: 'id', type: 'integer', kind: 'number' }], hasNonKeyColumns: true };

const START = Date.UTC(2026, 0, 1);
const STEP_MS = 4; // commit spacing: commit numbers up to 4M, ~4.4 hours

/**
 * 1,000,000 changes, commits interleaved across records: todo 10,000 records × 80
 * versions (CREATE, UPDATEs; every 20th record deleted at its last version) and item 2,000
 * records × 100 versions. Contexts carry one of 1,000 userIds.
 */
export async function seed(c, scale) {
  const todoRecords = 10_000;
  const todoVersions = Math.round(80 * scale);
  const itemRecords = 2_000;
  const itemVersions = Math.round(100 * scale);
  await c.query(`
    CREATE TABLE todo (id int PRIMARY KEY, task text NOT NULL, is_completed boolean NOT NULL, views int NOT NULL);
    CREATE TABLE item (id int PRIMARY KEY, name text NOT NULL, price numeric(10,2) NOT NULL);
    ${bemiChangesTableSql().up}
    INSERT INTO _bemi_capture_state (slot_name, database, started_at) VALUES ('bench', current_database(), to_timestamp(${START / 1000}) - interval '1 hour');
  `);
  // n = global commit number; todo and item commits alternate in proportion.
  const insert = (table, records, versions, offset, stride, image, deleteEvery) => `
    INSERT INTO changes (primary_key, before, after, context, database, schema, "table", operation, committed_at, queued_at, transaction_id, position, commit_position, seq)
    SELECT r::text,
           CASE WHEN v = 0 THEN '{}'::jsonb ELSE ${image('v - 1')} END,
           CASE WHEN v = ${versions - 1} AND r % ${deleteEvery} = 0 THEN '{}'::jsonb ELSE ${image('v')} END,
           jsonb_build_object('userId', (r * 7 + v) % 1000, 'endpoint', '/${table}/' || r),
           current_database(), 'public', '${table}',
           CASE WHEN v = 0 THEN 'CREATE' WHEN v = ${versions - 1} AND r % ${deleteEvery} = 0 THEN 'DELETE' ELSE 'UPDATE' END,
           to_timestamp(${START / 1000}) + n * interval '${STEP_MS} milliseconds', to_timestamp(${START / 1000}) + n * interval '${STEP_MS} milliseconds',
           n, n * 100, n * 100 + 50, 0
    FROM generate_series(0, ${versions - 1}) v, generate_series(1, ${records}) r,
         LATERAL (SELECT ((v * ${records} + r - 1) * ${stride} + ${offset})::bigint AS n) x
    ORDER BY n`;
  const todoImage = (v) => `jsonb_build_object('id', r, 'task', 'task ' || r || ' v' || ${v}, 'is_completed', (${v}) % 2 = 1, 'views', ${v})`;
  const itemImage = (v) => `jsonb_build_object('id', r, 'name', 'item ' || r, 'price', round((r + ${v}) / 7.0, 2))`;
  // Commit numbers interleave the tables evenly: todo takes every 5th from 0, item every 20th from 1.
  await c.query(insert('todo', todoRecords, todoVersions, 0, 5, todoImage, 20));
  await c.query(insert('item', itemRecords, itemVersions, 1, 20, itemImage, 1_000_000));
  await c.query(`
    INSERT INTO todo SELECT r, 'task ' || r || ' v${todoVersions - 1}', ${todoVersions - 1} % 2 = 1, ${todoVersions - 1} FROM generate_series(1, ${todoRecords}) r WHERE r % 20 <> 0;
    INSERT INTO item SELECT r, 'item ' || r, round((r + ${itemVersions - 1}) / 7.0, 2) FROM generate_series(1, ${itemRecords}) r;
    `);
  await c.query(`VACUUM ANALYZE changes`);
  await c.query(`ANALYZE todo; ANALYZE item`);
  const [{ n }] = (await c.query(`SELECT count(*)::int AS n FROM changes`)).rows;
  return { changes: n, todoRecords, todoVersions, lastTodoCommit: (todoVersions * todoRecords - 1) * 1 };
}

async function time(fn) {
  const t0 = performance.now();
  await fn();
  return performance.now() - t0;
}

export async function runHistory({ adminUrl, quick = false, log = () => {}, explain = false }) {
  const dbName = `bemi_bench_history_${process.pid}`;
  const admin = new Client({ connectionString: adminUrl });
  await admin.connect();
  await admin.query(`DROP DATABASE IF EXISTS ${dbName}`);
  await admin.query(`CREATE DATABASE ${dbName}`);
  const url = new URL(adminUrl);
  url.pathname = `/${dbName}`;
  const c = new Client({ connectionString: url.toString() });
  await c.connect();
  let orm;
  try {
    log('history: seeding changes ...');
    const t0 = performance.now();
    const facts = await seed(c, quick ? 0.25 : 1);
    log(`history: ${facts.changes.toLocaleString('en-US')} changes seeded in ${((performance.now() - t0) / 1000).toFixed(1)} s`);
    // The seed leaves ~1 GB of dirty buffers: written now, not by a checkpoint during the timings.
    await c.query('CHECKPOINT').catch(() => log('history: CHECKPOINT not allowed for this role; timings may include one'));
    orm = await MikroORM.init({ driver: PostgreSqlDriver, clientUrl: url.toString(), entities: [TodoSchema, ItemSchema], allowGlobalContext: true, pool: { min: 1, max: 2 } });
    const history = BemiHistory.create(orm);
    const rnd = mulberry32(42);
    const span = facts.todoVersions * facts.todoRecords * 5 * STEP_MS;
    const randomInstant = () => new Date(START + Math.floor(rnd() * span));
    const randomKey = () => 1 + Math.floor(rnd() * facts.todoRecords);

    // Warm-up: caches (catalog, capture start) and PostgreSQL's buffers.
    for (let i = 0; i < 200; i++) await history.at(Todo, randomKey(), randomInstant());

    // Baseline side by side: the same at() with prepared statements off (plain em.execute, as
    // PostgreSQL then plans the statement on every call). Alternating order, same keys/moments.
    const plain = BemiHistory.create(orm);
    // Internal switch (the time-travel part's PreparedReader); fails loudly if it moves.
    const plainReader = plain.timeTravel?.prepared;
    if (!plainReader || !('enabled' in plainReader)) throw new Error('bench/history.mjs: BemiHistory no longer has timeTravel.prepared.enabled; update the baseline switch');
    plainReader.enabled = false;
    const atTimes = [];
    const atPlainTimes = [];
    for (let i = 0; i < (quick ? 500 : 2000); i++) {
      const key = randomKey();
      const at = randomInstant();
      if (i % 2) {
        atTimes.push(await time(() => history.at(Todo, key, at)));
        atPlainTimes.push(await time(() => plain.at(Todo, key, at)));
      } else {
        atPlainTimes.push(await time(() => plain.at(Todo, key, at)));
        atTimes.push(await time(() => history.at(Todo, key, at)));
      }
    }
    const recordPage = [];
    for (let i = 0; i < 300; i++) {
      const key = randomKey();
      recordPage.push(await time(() => history.changes(Todo, { primaryKey: key, limit: 50 })));
    }
    const tableFirst = [];
    for (let i = 0; i < 100; i++) tableFirst.push(await time(() => history.changes(Todo, { limit: 50, order: i % 2 ? 'desc' : 'asc' })));
    const tablePage = [];
    for (let i = 0; i < 30; i++) {
      const from = randomInstant();
      tablePage.push(await time(() => history.changes(Todo, { from, limit: 50 })));
    }
    const contextPage = [];
    const contextAll = [];
    for (let i = 0; i < 50; i++) {
      const userId = Math.floor(rnd() * 1000);
      contextPage.push(await time(() => history.changes({ context: { userId }, limit: 50 })));
      contextAll.push(await time(() => history.changes({ context: { userId }, limit: 10_000 })));
    }
    // The first tableAt() calls read most of the record index's leaf pages into shared buffers
    // (the at() warm-up touched a few thousand keys only): ~2× slower. Reported, then warmed.
    const tableAtCold = await time(() => history.tableAt(Todo, randomInstant()));
    for (let i = 0; i < 2; i++) await history.tableAt(Todo, randomInstant());
    const tableAt = [];
    for (let i = 0; i < (quick ? 5 : 11); i++) {
      const at = randomInstant();
      tableAt.push(await time(() => history.tableAt(Todo, at)));
    }
    // The statement without entity hydration, as tableAt() sends it and with its window probe
    // turned off, same T, alternating: where tableAt() spends its time, and what the window saves.
    const sideBySide = async (upper, outA, outB, i) => {
      const first = tableAtSql(loc, live, upper, null, null, [], null, 'live');
      const second = tableAtSql(loc, live, upper, null, null, [], null, 'live', false);
      const runs = [
        async () => outA.push(await time(() => orm.em.execute(first.sql, first.params))),
        async () => outB.push(await time(() => orm.em.execute(second.sql, second.params))),
      ];
      for (const run of i % 2 ? runs : runs.reverse()) await run();
    };
    const midWindow = [];
    const midPlain = [];
    for (let i = 0; i < (quick ? 5 : 11); i++) {
      await sideBySide(randomInstant().toISOString().replace('Z', '000Z'), midWindow, midPlain, i);
    }
    // T after the last change (tableAt(now)).
    const tableAtNow = [];
    const nowWindow = [];
    const nowPlain = [];
    const now = new Date(START + span + 1000);
    const nowUpper = now.toISOString().replace('Z', '999Z');
    for (let i = 0; i < (quick ? 5 : 11); i++) {
      tableAtNow.push(await time(() => history.tableAt(Todo, now)));
      await sideBySide(nowUpper, nowWindow, nowPlain, i);
    }
    const rowsAtEnd = (await history.tableAt(Todo, now)).length;

    if (explain) await printPlans(c, orm, facts, history);

    const ms = (v) => Math.round(v * 100) / 100;
    const note = `${facts.changes.toLocaleString('en-US')} changes; BemiHistory via MikroORM, warm cache`;
    return [
      absoluteRow('history at() p50', 'ms', ms(median(atTimes)), '≤ 2 ms', (v) => v <= 2, note, ms(median(atPlainTimes)), 'not prepared'),
      absoluteRow('history at() p99', 'ms', ms(percentile(atTimes, 99)), '≤ 10 ms', (v) => v <= 10, note, ms(percentile(atPlainTimes, 99)), 'not prepared'),
      absoluteRow('history changes() record, first page p50', 'ms', ms(median(recordPage)), '≤ 5 ms', (v) => v <= 5, '50 rows of one record'),
      absoluteRow('history changes() table, first page p50', 'ms', ms(median(tableFirst)), '≤ 5 ms', (v) => v <= 5, '50 rows of todo, oldest or newest first'),
      absoluteRow('history changes() table from T, first page p50', 'ms', ms(median(tablePage)), '≤ 10 ms', (v) => v <= 10, 'from filter + commit order, bounded through the time-position index: see docs/history.md'),
      absoluteRow('history context filter, first page p50', 'ms', ms(median(contextPage)), '≤ 50 ms', (v) => v <= 50, '{ userId } over all tables, 50 rows'),
      absoluteRow('history context filter, all matches p50', 'ms', ms(median(contextAll)), '≤ 50 ms', (v) => v <= 50, `~${Math.round(facts.changes / 1000)} rows per userId`),
      absoluteRow('history tableAt() 10,000-row table p50', 'ms', ms(median(tableAt)), '≤ 300 ms', (v) => v <= 300, `${rowsAtEnd.toLocaleString('en-US')} rows at the end`),
      absoluteRow('history tableAt() first call (cold index)', 'ms', ms(tableAtCold), '(diagnostic)', () => null, 'the first tableAt() after the other suites; the record index then comes from the OS cache'),
      absoluteRow('history tableAt(now) 10,000-row table p50', 'ms', ms(median(tableAtNow)), '≤ 300 ms', (v) => v <= 300, 'T after the last change'),
      absoluteRow('history tableAt() statement alone p50', 'ms', ms(median(midWindow)), '(diagnostic)', () => null, 'as sent (window probe first) vs every key probed unbounded, same T, alternating', ms(median(midPlain)), 'no window'),
      absoluteRow('history tableAt(now) statement alone p50', 'ms', ms(median(nowWindow)), '(diagnostic)', () => null, 'the same, T after the last change', ms(median(nowPlain)), 'no window'),
    ];
  } finally {
    await orm?.close(true);
    await c.end();
    await admin.query(`DROP DATABASE IF EXISTS ${dbName} WITH (FORCE)`);
    await admin.end();
  }
}

/** EXPLAIN ANALYZE of the statements BemiHistory sends, for docs/history.md. */
async function printPlans(c, orm, facts, history) {
  const platform = orm.em.getPlatform();
  const mid = new Date(START + Math.floor((facts.todoVersions * facts.todoRecords * 5 * STEP_MS) / 2)).toISOString().replace('Z', '000Z');
  const plans = {
    'at(Todo, 4242, T)': recordAtSql(loc, live, ['4242'], mid),
    'changes(Todo, { primaryKey: 4242, limit: 50 })': changesSql(loc, { table: live, keyText: { live, values: ['4242'] }, order: 'asc', limit: 50 }),
    'changes(Todo, { limit: 50 })': changesSql(loc, { table: live, order: 'asc', limit: 50 }),
    'changes(Todo, { from: T, limit: 50 })': changesSql(loc, { table: live, fromLower: mid, order: 'asc', limit: 50 }),
    'changes({ context: { userId: 42 }, limit: 50 })': changesSql(loc, { context: '{"userId":42}', order: 'asc', limit: 50 }),
    'tableAt(Todo, T)': tableAtSql(loc, live, mid, null, null, [], null, 'live'),
    'tableAt(Todo, now)': tableAtSql(loc, live, new Date(START + 86_400_000).toISOString().replace('Z', '000Z'), null, null, [], null, 'live'),
  };
  void history;
  // at() runs as a prepared statement: after five executions PostgreSQL may switch to a generic
  // plan, so that is the plan shown (forced), executed with the same values.
  {
    const built = recordAtSql(loc, live, ['4242'], mid);
    await c.query(`PREPARE bench_at AS ${positional(built.sql)}`);
    await c.query(`SET plan_cache_mode = force_generic_plan`);
    const values = built.params.map((v) => (v === null ? 'NULL' : `'${String(v).replace(/'/g, "''")}'`)).join(', ');
    const { rows } = await c.query(`EXPLAIN (ANALYZE, COSTS OFF, SUMMARY ON) EXECUTE bench_at(${values})`);
    await c.query(`RESET plan_cache_mode; DEALLOCATE bench_at`);
    console.log(`\n### at(Todo, 4242, T) as the prepared statement runs it (generic plan)\n\n\`\`\`\n${rows.map((r) => r['QUERY PLAN']).join('\n')}\n\`\`\``);
  }
  for (const [label, built] of Object.entries(plans)) {
    const sql = platform.formatQuery(built.sql, built.params);
    const { rows } = await c.query(`EXPLAIN (ANALYZE, COSTS OFF, SUMMARY ON) ${sql}`);
    console.log(`\n### ${label}\n\n\`\`\`\n${rows.map((r) => r['QUERY PLAN']).join('\n')}\n\`\`\``);
  }
}

function mulberry32(seed) {
  return () => {
    seed |= 0;
    seed = (seed + 0x6d2b79f5) | 0;
    let t = Math.imul(seed ^ (seed >>> 15), 1 | seed);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

// Standalone run.
if (import.meta.url === `file://${process.argv[1]}`) {
  const { startPostgres } = await import('../test/support/postgres-server.mjs');
  const external = process.env.BEMI_BENCH_DATABASE_URL;
  const server = external ? null : await startPostgres({ extraFlags: ['-c', 'shared_buffers=256MB', '-c', 'max_wal_size=4GB'] });
  try {
    const rows = await runHistory({
      adminUrl: external ?? server.url,
      quick: process.argv.includes('--quick'),
      explain: process.argv.includes('--explain'),
      log: (line) => console.error(`[bench] ${line}`),
    });
    console.log('');
    printTable(rows);
  } finally {
    await server?.stop();
  }
}
