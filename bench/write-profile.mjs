// Where the write overhead goes: for each write shape of bench/write-overhead.mjs, the cost of
// context capture per statement split into the Node side (the hook's own work, timed in
// isolation on the exact SQL MikroORM hands it) and the server side (the same final SQL sent
// through a raw `pg` client, no ORM, with and without the comment and the trigger), plus the
// trigger's own time from EXPLAIN ANALYZE and the WAL bytes it adds.
//
//   npm run build && node bench/write-profile.mjs [--quick] [--baseline-dist=<other build's dist>]
//
// --baseline-dist adds a server-side variant whose trigger comes from another build's
// bemiMigrationSql() (e.g. the previous trigger, built in a separate worktree), side by side.
import { createRequire } from 'node:module';
import { performance } from 'node:perf_hooks';
import { resolve } from 'node:path';
import { startPostgres } from '../test/support/postgres-server.mjs';
import { median } from './report.mjs';
import { adminQuery as query, CONTEXT, DDL, Item, ItemSchema, PAYLOAD } from './write-overhead.mjs';

const require = createRequire(import.meta.url);
const { MikroORM } = require('@mikro-orm/core');
const { PostgreSqlDriver } = require('@mikro-orm/postgresql');
const { Client } = require('pg');
const { ClsServiceManager } = require('nestjs-cls');
const bemi = require('../dist/index.js');
const { createContextAttacher } = require('../dist/orm/bemi-query-hook.js');
const { isDataModifying } = require('../dist/orm/dml-detector.js');
const { encodeContext, contextComment } = require('../dist/orm/context-encoder.js');
const { secretKeyMatcher } = require('../dist/orm/context-redaction.js');

const quick = process.argv.includes('--quick');
const baselineDist = process.argv.find((a) => a.startsWith('--baseline-dist='))?.slice(16);
const ROUNDS = quick ? 3 : 9;
const log = (line) => console.error(`[profile] ${line}`);

const SEED = 5000; // rows 1..SEED exist for the update, upsert and delete shapes

// The shapes of bench/write-overhead.mjs, each run once against ids 1..SEED to capture its SQL.
const SHAPES = [
  { key: 'flush-1', label: 'single-row flush', rows: 1, run: (em) => { em.create(Item, { name: 'one', payload: PAYLOAD }); return em.flush(); } },
  { key: 'flush-100', label: '100-row flush', rows: 100, run: (em) => { for (let i = 0; i < 100; i++) em.create(Item, { name: `n${i}`, payload: PAYLOAD }); return em.flush(); } },
  { key: 'insertMany-1000', label: '1,000-row insertMany', rows: 1000, run: (em) => em.insertMany(Item, Array.from({ length: 1000 }, (_, i) => ({ name: `m${i}`, payload: PAYLOAD, counter: 0 }))) },
  { key: 'update-100', label: '100-row nativeUpdate', rows: 100, run: (em) => em.nativeUpdate(Item, { id: { $gte: 101, $lt: 201 } }, { counter: 7 }) },
  { key: 'delete-100', label: '100-row nativeDelete', rows: 100, deletes: [1001, 1100], run: (em) => em.nativeDelete(Item, { id: { $gte: 1001, $lt: 1101 } }) },
  { key: 'upsertMany-100', label: '100-row upsertMany', rows: 100, run: (em) => em.upsertMany(Item, Array.from({ length: 100 }, (_, i) => ({ id: 201 + i, name: `u${i}`, payload: PAYLOAD, counter: 3 }))) },
  { key: 'qb-update-100', label: '100-row QueryBuilder update', rows: 100, run: (em) => em.createQueryBuilder(Item).update({ counter: 9 }).where({ id: { $gte: 301, $lt: 401 } }).execute() },
];

async function makeDatabase(adminUrl, name, triggerSql) {
  await query(adminUrl, `DROP DATABASE IF EXISTS ${name} WITH (FORCE)`);
  await query(adminUrl, `CREATE DATABASE ${name}`);
  const url = new URL(adminUrl);
  url.pathname = `/${name}`;
  await query(url.toString(), DDL);
  if (triggerSql) await query(url.toString(), triggerSql);
  await reseed(url.toString());
  return url.toString();
}

async function reseed(url) {
  await query(url, `TRUNCATE bench_item RESTART IDENTITY;
INSERT INTO bench_item (name, payload) SELECT 's' || g, repeat('x', 64) FROM generate_series(1, ${SEED}) g`);
  await query(url, 'VACUUM ANALYZE bench_item'); // not in the implicit transaction of a multi-statement text
}

/** Runs each shape once through MikroORM and records what its onQuery hook receives, and the SQL sent. */
async function captureStatements(url) {
  const orm = await MikroORM.init({ driver: PostgreSqlDriver, clientUrl: url, entities: [ItemSchema], pool: { min: 1, max: 1 } });
  const platform = orm.em.getPlatform();
  let recorded = [];
  orm.config.set('onQuery', (sql, params) => {
    recorded.push({ sql, params, sent: platform.formatQuery(sql, params) });
    return sql;
  });
  try {
    for (const shape of SHAPES) {
      recorded = [];
      const em = orm.em.fork();
      await shape.run(em);
      shape.statements = recorded;
      // flush wraps its statements in a transaction (begin/commit bypass onQuery); the others autocommit.
      shape.transaction = shape.key.startsWith('flush');
    }
    return platform;
  } finally {
    await orm.close(true);
  }
}

// ---------------------------------------------------------------------------------------------
// Node side: the hook's work per statement, in isolation, with a context scope active.

/** Nanoseconds per call of `fn()` (median of rounds), and CPU ns per call over all rounds. */
function timeLoop(fn, iterations) {
  const rounds = [];
  const cpuStart = process.cpuUsage();
  let sink = 0;
  for (let r = 0; r < ROUNDS + 2; r++) {
    const start = performance.now();
    for (let i = 0; i < iterations; i++) sink ^= fn(i) ? 1 : 0;
    if (r >= 2) rounds.push(((performance.now() - start) * 1e6) / iterations); // 2 warm-up rounds
  }
  const cpu = process.cpuUsage(cpuStart);
  globalThis.__sink = sink;
  return { ns: median(rounds), spread: [Math.min(...rounds), Math.max(...rounds)], cpuNs: ((cpu.user + cpu.system) * 1000) / ((ROUNDS + 2) * iterations) };
}

/** `a` minus `b` in ns per call: rounds of each alternate, the median of the per-pair differences. */
function timePair(a, b, iterations) {
  const diffs = [];
  for (let r = 0; r < 2 * ROUNDS + 2; r++) {
    const one = (fn) => {
      const start = performance.now();
      for (let i = 0; i < iterations; i++) globalThis.__sink = fn(i);
      return ((performance.now() - start) * 1e6) / iterations;
    };
    const [ta, tb] = r % 2 ? [one(a), one(b)] : [one(b), one(a)].reverse();
    if (r >= 2) diffs.push(ta - tb);
  }
  return { ns: median(diffs), spread: [Math.min(...diffs), Math.max(...diffs)] };
}

function profileNode(platform) {
  const cls = ClsServiceManager.getClsService();
  const store = new bemi.BemiContextStore(cls);
  const isSecret = secretKeyMatcher(undefined);
  const out = {};
  cls.run(() => {
    store.merge(CONTEXT);
    const attach = createContextAttacher({ store, logger: { warn() {} } });
    const baselineAttach = baselineDist ? require(resolve(baselineDist, 'orm/bemi-query-hook.js')).createContextAttacher({ store, logger: { warn() {} } }) : null;
    // A context holding the caller's own (unfrozen) object: encoded for every statement.
    const changeableStore = { get: () => changeableContext };
    const changeableContext = Object.freeze({ ...CONTEXT, params: { id: '42' } });
    const attachChangeable = createContextAttacher({ store: changeableStore, logger: { warn() {} } });
    const encoded = encodeContext(store.get(), isSecret);
    const encodedComment = contextComment(encoded);
    for (const shape of SHAPES) {
      const sqls = shape.statements.map((s) => s.sql);
      const per = (fn, n) => {
        const t = timeLoop((i) => fn(i % sqls.length), Math.max(200, Math.round(n / Math.max(1, sqls[0].length / 200))));
        return t;
      };
      const n = quick ? 20_000 : 100_000;
      out[shape.key] = {
        statementBytes: sqls.reduce((a, s) => a + s.length, 0) / sqls.length,
        hook: per((i) => attach(sqls[i]).length, n),
        baselineHook: baselineAttach ? per((i) => baselineAttach(sqls[i]).length, n) : undefined,
        changeableHook: per((i) => attachChangeable(sqls[i]).length, n),
        detector: per((i) => isDataModifying(sqls[i]), n),
        storeGet: per(() => store.get() !== undefined, n),
        comment: per((i) => (contextComment(encoded) + sqls[i]).length, n),
        // A new context object (every request, every BemiService.set()) is encoded once.
        encodeCold: per(() => Buffer.byteLength(encodeContext({ ...CONTEXT }, isSecret), 'utf8'), n),
        // What the comment costs MikroORM after the hook: formatQuery scans the whole text for `?`.
        // The comment's share of MikroORM's formatQuery (it scans the text for `?`), isolated on a
        // one-placeholder text: on the shapes' own texts it is far below the run-to-run spread.
        formatExtra: timePair(() => platform.formatQuery(`${encodedComment}x = ?`, [1]).length, () => platform.formatQuery('x = ?', [1]).length, n),
        // What store.get() would cost reading the nestjs-cls store object directly (one lookup, no key path).
        directGet: per(() => cls.get()?.['nestjs-bemi:context'] !== undefined, n),
      };
    }
  });
  return out;
}

// ---------------------------------------------------------------------------------------------
// Server side: the final SQL through a raw pg client.

/**
 * One unit of work as MikroORM sends it: BEGIN/COMMIT around flushes, autocommit otherwise.
 * Returns the µs of its DML statements alone (BEGIN and COMMIT round trips left out).
 */
async function sendUnit(client, shape, texts) {
  if (shape.transaction) await client.query('BEGIN');
  let us = 0;
  for (const text of texts) {
    const start = performance.now();
    await client.query(text);
    us += (performance.now() - start) * 1000;
  }
  if (shape.transaction) await client.query('COMMIT');
  return us;
}

/** Puts deleted rows back so that the next delete removes the same 100 rows. */
async function restore(client, shape) {
  if (!shape.deletes) return;
  const [from, to] = shape.deletes;
  await client.query(`INSERT INTO bench_item (id, name, payload) SELECT g, 's' || g, repeat('x', 64) FROM generate_series(${from}, ${to}) g ON CONFLICT (id) DO NOTHING`);
}

async function profileServer(variants, shapes, comment) {
  const results = {}; // results[shape][variant] = { us: [], wal: [] }
  const clients = {};
  for (const v of variants) {
    clients[v.name] = new Client({ connectionString: v.url });
    await clients[v.name].connect();
  }
  try {
    for (const shape of shapes) {
      const plain = shape.statements.map((s) => s.sent);
      const commented = plain.map((s) => comment + s);
      const iterations = Math.max(quick ? 5 : 15, Math.round((quick ? 60 : 200) / shape.rows ** 0.5));
      for (let round = 0; round < ROUNDS; round++) {
        const order = variants.map((_, i) => variants[(i + round) % variants.length]);
        for (const v of order) {
          const client = clients[v.name];
          const texts = v.comment ? commented : plain;
          const times = [];
          const statements = [];
          for (let i = 0; i < iterations + 2; i++) {
            await restore(client, shape);
            const start = performance.now();
            const dml = await sendUnit(client, shape, texts);
            if (i >= 2) times.push((performance.now() - start) * 1000);
            if (i >= 2) statements.push(dml);
          }
          const r = ((results[shape.key] ??= {})[v.name] ??= { us: [], dml: [], wal: [] });
          r.us.push(median(times));
          r.dml.push(median(statements));
          // WAL of one unit, from the insert position (on an otherwise quiet database)
          await restore(client, shape);
          const [{ lsn }] = (await client.query('SELECT pg_current_wal_insert_lsn() AS lsn')).rows;
          await sendUnit(client, shape, texts);
          const [{ bytes }] = (await client.query(`SELECT pg_wal_lsn_diff(pg_current_wal_insert_lsn(), '${lsn}')::bigint AS bytes`)).rows;
          r.wal.push(Number(bytes));
        }
      }
      log(`server side: ${shape.label} done`);
    }
    // The trigger's own time, from EXPLAIN ANALYZE of the commented statement (rolled back).
    for (const v of variants.filter((x) => x.trigger)) {
      for (const shape of shapes) {
        const client = clients[v.name];
        const triggerMs = [];
        const execMs = [];
        for (let i = 0; i < ROUNDS * 3; i++) {
          await restore(client, shape);
          await client.query('BEGIN');
          for (const text of shape.statements.map((s) => s.sent)) {
            const [row] = (await client.query(`${v.comment ? comment : ''}EXPLAIN (ANALYZE, TIMING, FORMAT JSON) ${text}`)).rows;
            const plan = row['QUERY PLAN'][0];
            triggerMs.push((plan.Triggers ?? []).filter((t) => t['Trigger Name'] === '_bemi_context').reduce((a, t) => a + t.Time, 0));
            execMs.push(plan['Execution Time']);
          }
          await client.query('ROLLBACK');
        }
        results[shape.key][v.name].triggerUs = median(triggerMs.slice(2)) * 1000;
        results[shape.key][v.name].executionUs = median(execMs.slice(2)) * 1000;
      }
    }
  } finally {
    for (const c of Object.values(clients)) await c.end();
  }
  return results;
}

// ---------------------------------------------------------------------------------------------
// The whole path through MikroORM, layer by layer: untracked; the same inside a context scope
// (nestjs-cls, i.e. AsyncLocalStorage); plus the hook (comment sent, no trigger); plus the trigger.

async function profileOrm(plainUrl, trackedUrl, shapes) {
  const cls = ClsServiceManager.getClsService();
  const store = new bemi.BemiContextStore(cls);
  const init = (url) => MikroORM.init({ driver: PostgreSqlDriver, clientUrl: url, entities: [ItemSchema], pool: { min: 1, max: 1 } });
  const plainOrm = await init(plainUrl);
  const hookOrm = await init(plainUrl);
  const trackedOrm = await init(trackedUrl);
  bemi.installBemiQueryHook(hookOrm, { store });
  bemi.installBemiQueryHook(trackedOrm, { store });
  const scoped = (fn) => store.run(CONTEXT, fn);
  const layers = [
    { name: 'untracked', orm: plainOrm, url: plainUrl, wrap: (fn) => fn() },
    { name: 'scope', orm: plainOrm, url: plainUrl, wrap: scoped },
    { name: 'scope+hook', orm: hookOrm, url: plainUrl, wrap: scoped },
    { name: 'nestjs-bemi', orm: trackedOrm, url: trackedUrl, wrap: scoped },
  ];
  const restorers = {};
  for (const l of layers) {
    restorers[l.name] = new Client({ connectionString: l.url });
    await restorers[l.name].connect();
  }
  const results = {};
  try {
    for (const shape of shapes) {
      const ops = Math.max(quick ? 10 : 30, Math.round((quick ? 150 : 400) / shape.rows ** 0.5));
      for (let round = 0; round < ROUNDS; round++) {
        const order = layers.map((_, i) => layers[(i + round) % layers.length]);
        for (const l of order) {
          const em = l.orm.em.fork();
          const times = [];
          for (let i = 0; i < ops + 2; i++) {
            await restore(restorers[l.name], shape);
            const start = performance.now();
            await l.wrap(() => shape.run(em));
            if (i >= 2) times.push((performance.now() - start) * 1000);
            em.clear();
          }
          // The median operation: a GC pause or a neighbour's burst moves the mean of a round, not this.
          (((results[shape.key] ??= {})[l.name] ??= [])).push(median(times));
        }
      }
      log(`orm layers: ${shape.label} done`);
    }
  } finally {
    for (const c of Object.values(restorers)) await c.end();
    for (const l of [plainOrm, hookOrm, trackedOrm]) await l.close(true);
  }
  return { layers: layers.map((l) => l.name), results };
}

// ---------------------------------------------------------------------------------------------

const f = (n, digits = 1) => (n === undefined ? '—' : n >= 100 ? Math.round(n).toLocaleString('en-US') : n.toFixed(digits));
const spread = (values) => `${f(Math.min(...values))}–${f(Math.max(...values))}`;

function printTable(header, rows) {
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => String(r[i]).length)));
  const line = (cells) => `| ${cells.map((c, i) => String(c).padEnd(widths[i])).join(' | ')} |`;
  console.log(line(header));
  console.log(`|${widths.map((w) => '-'.repeat(w + 2)).join('|')}|`);
  for (const r of rows) console.log(line(r));
  console.log('');
}

async function main() {
  const external = process.env.BEMI_BENCH_DATABASE_URL;
  const server = external ? null : await startPostgres({ extraFlags: ['-c', 'shared_buffers=256MB', '-c', 'max_wal_size=4GB'] });
  const adminUrl = external ?? server.url;
  try {
    const trigger = bemi.bemiMigrationSql({ replicaIdentityFull: true }).up;
    const plainUrl = await makeDatabase(adminUrl, 'profile_plain', null);
    const trackedUrl = await makeDatabase(adminUrl, 'profile_tracked', trigger);
    const variants = [
      { name: 'plain', label: 'untracked', url: plainUrl, comment: false },
      { name: 'comment', label: 'comment, no trigger', url: plainUrl, comment: true },
      { name: 'trigger-only', label: 'trigger, no comment', url: trackedUrl, comment: false, trigger: true },
      { name: 'tracked', label: 'comment + trigger', url: trackedUrl, comment: true, trigger: true },
    ];
    if (baselineDist) {
      const other = require(resolve(baselineDist, 'index.js'));
      const baselineUrl = await makeDatabase(adminUrl, 'profile_baseline', other.bemiMigrationSql({ replicaIdentityFull: true }).up);
      variants.push({ name: 'baseline', label: `comment + trigger of ${baselineDist}`, url: baselineUrl, comment: true, trigger: true });
    }

    const platform = await captureStatements(plainUrl);
    await reseed(plainUrl);
    const comment = contextComment(encodeContext(CONTEXT, secretKeyMatcher(undefined)));

    log('node side ...');
    profileNode(platform); // warm-up: the first shapes would otherwise also time the JIT
    const node = profileNode(platform);
    log('server side ...');
    const serverResults = await profileServer(variants, SHAPES, comment);
    await reseed(plainUrl);
    await reseed(trackedUrl);
    log('through MikroORM, layer by layer ...');
    const orm = await profileOrm(plainUrl, trackedUrl, SHAPES);

    console.log(`\nStatements per shape (what the hook receives; MikroORM ${require('@mikro-orm/core/package.json').version}):\n`);
    for (const s of SHAPES) console.log(`- ${s.label}: ${s.statements.length} statement(s), ${f(node[s.key].statementBytes, 0)} chars, e.g. ${s.statements[0].sql.slice(0, 90)}…`);

    console.log(`\nNode side, ns per statement (median of ${ROUNDS} rounds; min–max of the rounds for the hook):\n`);
    printTable(['shape', 'hook total', 'hook spread', ...(baselineDist ? ['hook, baseline build'] : []), 'store.get', 'direct cls read', 'DML detector', 'comment concat', 'encode (new context)', 'hook, changeable context', 'formatQuery extra'], SHAPES.map((s) => {
      const n = node[s.key];
      return [s.label, f(n.hook.ns), spread([n.hook.spread[0], n.hook.spread[1]]), ...(baselineDist ? [f(n.baselineHook.ns)] : []), f(n.storeGet.ns), f(n.directGet.ns), f(n.detector.ns), f(n.comment.ns), f(n.encodeCold.ns), f(n.changeableHook.ns), f(n.formatExtra.ns)];
    }));

    for (const [field, title] of [['dml', 'the DML statement alone'], ['us', 'the whole unit (with BEGIN/COMMIT for flushes)']]) {
      console.log(`Server side, µs per ${title}, through raw pg (median of ${ROUNDS} alternating rounds of per-statement medians, min–max in brackets):\n`);
      printTable(['shape', ...variants.map((v) => v.label), 'added by comment + trigger'], SHAPES.map((s) => {
        const r = serverResults[s.key];
        const cell = (v) => `${f(median(r[v.name][field]))} (${spread(r[v.name][field])})`;
        return [s.label, ...variants.map(cell), f(median(r.tracked[field]) - median(r.plain[field]))];
      }));
    }

    console.log('Trigger time from EXPLAIN (ANALYZE, TIMING), µs per statement (median), and WAL bytes per unit:\n');
    printTable(['shape', ...variants.filter((v) => v.trigger).map((v) => `trigger: ${v.label}`), 'execution, tracked', ...variants.map((v) => `WAL ${v.name}`)], SHAPES.map((s) => {
      const r = serverResults[s.key];
      return [s.label, ...variants.filter((v) => v.trigger).map((v) => f(r[v.name].triggerUs)), f(r.tracked.executionUs), ...variants.map((v) => f(median(r[v.name].wal), 0))];
    }));

    console.log(`Through MikroORM, µs per operation by layer (median of ${ROUNDS} alternating rounds, min–max in brackets); each step adds one layer:\n`);
    printTable(['shape', ...orm.layers, 'scope costs', 'hook + comment cost', 'trigger costs', 'tracked / untracked ops/s'], SHAPES.map((s) => {
      const r = orm.results[s.key];
      const m = (name) => median(r[name]);
      return [s.label, ...orm.layers.map((name) => `${f(m(name))} (${spread(r[name])})`), f(m('scope') - m('untracked')), f(m('scope+hook') - m('scope')), f(m('nestjs-bemi') - m('scope+hook')), `${(m('untracked') / m('nestjs-bemi')).toFixed(2)}×`];
    }));
    console.log(`(${new Date().toISOString()}, Node ${process.version}, ${quick ? 'quick' : 'full'} mode.)`);
  } finally {
    await server?.stop();
  }
}

main().then(() => process.exit(0), (error) => {
  console.error(error);
  process.exit(1);
});
