// Capture: end-to-end changes/s draining a backlog, beside a plain COPY of the same rows into
// the same `changes` table and the server's raw pgoutput decoding of the same WAL; then
// commit-to-visible lag under a steady 5,000 changes/s, and the worker's peak RSS.
import { spawn } from 'node:child_process';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { cpus } from 'node:os';
import { dirname, join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { fileURLToPath } from 'node:url';
import { absoluteRow, median, ratioRow } from './report.mjs';

const require = createRequire(import.meta.url);
const { Client } = require('pg');
const { bemiChangesTableSql, bemiMigrationSql } = require('../dist/index.js');
const here = dirname(fileURLToPath(import.meta.url));

const CONTEXT = '/*Bemi {"endpoint":"/events","method":"POST","userId":187234} Bemi*/ ';
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

export async function connect(url) {
  const c = new Client({ connectionString: url });
  await c.connect();
  return c;
}

/** The capture worker in its own process (bench/capture-child.mjs), with extra capture options; `ready` once it streams. */
export function startWorker(url, options = {}) {
  const child = spawn(process.execPath, [join(here, 'capture-child.mjs'), url, JSON.stringify(options)], { stdio: ['ignore', 'pipe', 'inherit'] });
  const ready = new Promise((resolve, reject) => {
    child.stdout.on('data', (d) => String(d).includes('ready') && resolve());
    child.on('exit', (code) => reject(new Error(`capture worker exited with ${code}`)));
  });
  const peakRssMb = () => {
    const status = readFileSync(`/proc/${child.pid}/status`, 'utf8');
    return Number(/VmHWM:\s+(\d+) kB/.exec(status)?.[1] ?? NaN) / 1024;
  };
  const stop = () => new Promise((resolve) => { child.once('exit', resolve); child.kill('SIGTERM'); });
  return { ready, peakRssMb, stop, pid: child.pid };
}

/**
 * CPU seconds used so far by the worker process and by each server process, read from /proc
 * (Linux only; null elsewhere). The cores shared by all of them bound the end-to-end rate.
 */
function cpuSnapshot(workerPid) {
  if (!existsSync('/proc/self/stat')) return null;
  const seconds = (pid) => {
    const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1].split(' ');
    return (Number(fields[11]) + Number(fields[12])) / 100; // utime + stime, clock ticks of 10 ms
  };
  const out = new Map([[`w${workerPid}`, { kind: 'worker', seconds: seconds(workerPid) }]]);
  for (const pid of readdirSync('/proc').filter((d) => /^\d+$/.test(d))) {
    try {
      const cmd = readFileSync(`/proc/${pid}/cmdline`, 'utf8').replace(/\0/g, ' ');
      if (!cmd.startsWith('postgres')) continue;
      const kind = cmd.includes('walsender') ? 'walsender' : cmd.includes(' bench_capture ') ? 'backends' : 'other';
      out.set(pid, { kind, seconds: seconds(pid) });
    } catch {
      // the process ended between listing and reading
    }
  }
  return out;
}

/** Min–max of a series, as text. */
function spread(values) {
  const r = (v) => Math.round(v).toLocaleString('en-US');
  return `${r(Math.min(...values))}–${r(Math.max(...values))}`;
}

/** All processes' CPU per change of a tally, in µs (NaN without /proc). */
function cpuTotal(tally) {
  return ((tally.worker + tally.walsender + tally.backends + tally.other) * 1e6) / tally.changes;
}

/** Adds the CPU each process used between two snapshots to `into` (processes gone by `after` are left out). */
function addCpu(into, before, after) {
  for (const [pid, { kind, seconds }] of after) into[kind] += seconds - (before.get(pid)?.seconds ?? 0);
}

/** Writes rows in statements of `perStatement`, one transaction each; returns the last one's xid (32 bits, as stored). */
export async function writeRows(c, rows, perStatement) {
  let xid = null;
  for (let done = 0; done < rows; done += perStatement) {
    const n = Math.min(perStatement, rows - done);
    const [, inserted] = await c.query(`BEGIN; ${CONTEXT}INSERT INTO bench_event (name, payload, amount) SELECT 'event ' || g, repeat('p', 60), g * 1.25 FROM generate_series(1, ${n}) g RETURNING (pg_current_xact_id()::text::bigint & 4294967295)::text AS xid; COMMIT`);
    xid = inserted.rows[0].xid;
  }
  return xid;
}

/**
 * Waits until the transaction `xid` is stored. Changes are stored in commit order and each source
 * transaction becomes visible at once, so everything before it is stored too; the probe walks the
 * (commit_position, seq) index backwards, so polling costs nothing beside the worker (a count(*)
 * every 20 ms scans the whole table and took CPU from the pipeline being measured). The count is
 * checked once at the end.
 */
export async function waitForTransaction(c, xid, expected, timeoutMs) {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const { rows } = await c.query('SELECT transaction_id::text AS xid FROM changes ORDER BY commit_position DESC, seq DESC LIMIT 1');
    if (rows[0]?.xid === xid) break;
    if (Date.now() > deadline) throw new Error(`capture stalled before transaction ${xid}`);
    await sleep(20);
  }
  const [{ n }] = (await c.query('SELECT count(*)::int AS n FROM changes')).rows;
  if (n !== expected) throw new Error(`expected ${expected} changes, found ${n}`);
}

async function waitForCount(c, expected, timeoutMs) {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const [{ n }] = (await c.query('SELECT count(*)::int AS n FROM changes')).rows;
    if (n >= expected) return n;
    if (Date.now() > deadline) throw new Error(`capture stalled at ${n}/${expected} changes`);
    await sleep(20);
  }
}

export async function runCapture({ adminUrl, quick, repetitions, log }) {
  const backlog = quick ? 50_000 : 200_000;
  const loadSeconds = quick ? 8 : 30;
  const admin = await connect(adminUrl);
  for (const name of ['bench_capture', 'bench_capture_copy']) {
    await admin.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`);
    await admin.query(`CREATE DATABASE ${name}`);
  }
  await admin.end();
  const url = new URL(adminUrl);
  url.pathname = '/bench_capture';
  const db = await connect(url.toString());
  // The COPY baseline loads into another database: its WAL is then skipped cheaply by the
  // capture slot instead of being decoded (which would slow the next capture run).
  const copyUrl = new URL(adminUrl);
  copyUrl.pathname = '/bench_capture_copy';
  const copyDb = await connect(copyUrl.toString());
  await copyDb.query(bemiChangesTableSql().up);
  // The ceiling of any ingest layout: the same rows into the same columns, no index, no key.
  await copyDb.query(`CREATE TABLE changes_bare (LIKE changes INCLUDING DEFAULTS)`);
  await db.query(`CREATE TABLE bench_event (id bigserial PRIMARY KEY, name text NOT NULL, payload text NOT NULL, amount numeric NOT NULL, at timestamptz NOT NULL DEFAULT now())`);
  // REPLICA IDENTITY as before the default became FULL, so runs stay comparable with bench/results.
  await db.query(bemiMigrationSql({ replicaIdentityFull: false }).up);

  // First start creates changes, publication and slot; the raw-decoding slot starts at the same point.
  let worker = startWorker(url.toString());
  await worker.ready;
  await worker.stop();
  await db.query(`SELECT pg_create_logical_replication_slot('bench_raw', 'pgoutput')`);

  const capture = [], copy = [], bare = [], raw = [];
  // The layout before context_seq (contextPerRow) side by side, its runs alternating in order with the default's.
  const perRow = [];
  const newCpu = () => ({ worker: 0, walsender: 0, backends: 0, other: 0, changes: 0 });
  const cpu = newCpu();
  const perRowCpu = newCpu();
  let peakRss = 0;
  /** Drains a fresh backlog with a worker of `options`: its changes/s, its CPU added to `into`. */
  const drain = async (options, into) => {
    await db.query('TRUNCATE changes');
    const lastXid = await writeRows(db, backlog, 1000);
    // The raw-decoding figure is of the default run's backlog only: this one's WAL is skipped.
    await db.query(`SELECT pg_replication_slot_advance('bench_raw', pg_current_wal_lsn())`);
    const w = startWorker(url.toString(), options);
    await w.ready;
    const cpuBefore = cpuSnapshot(w.pid);
    const t = performance.now();
    await waitForTransaction(db, lastXid, backlog, 300_000);
    const rate = backlog / ((performance.now() - t) / 1000);
    const cpuAfter = cpuSnapshot(w.pid); // before stop: the worker's backends still exist
    if (cpuBefore && cpuAfter) {
      addCpu(into, cpuBefore, cpuAfter);
      into.changes += backlog;
    }
    peakRss = Math.max(peakRss, w.peakRssMb());
    await w.stop();
    return rate;
  };
  try {
    for (let rep = 0; rep < Math.max(2, Math.ceil(repetitions / 2)); rep++) {
      if (rep % 2) perRow.push(await drain({ contextPerRow: true }, perRowCpu));
      await db.query('TRUNCATE changes');
      const lastXid = await writeRows(db, backlog, 1000);
      // Raw decoding of the same WAL, server side (what pg_recvlogical receives), consumed.
      let t = performance.now();
      const [{ n: decoded }] = (await db.query(`SELECT count(*)::int AS n FROM pg_logical_slot_get_binary_changes('bench_raw', NULL, NULL, 'proto_version', '1', 'publication_names', 'nestjs_bemi', 'messages', 'true')`)).rows;
      raw.push(decoded / ((performance.now() - t) / 1000));
      // End to end: from a started worker to every change stored.
      worker = startWorker(url.toString());
      await worker.ready;
      const cpuBefore = cpuSnapshot(worker.pid);
      t = performance.now();
      await waitForTransaction(db, lastXid, backlog, 300_000);
      capture.push(backlog / ((performance.now() - t) / 1000));
      const cpuAfter = cpuSnapshot(worker.pid); // before stop: the worker's backends still exist
      if (cpuBefore && cpuAfter) {
        addCpu(cpu, cpuBefore, cpuAfter);
        cpu.changes += backlog;
      }
      peakRss = Math.max(peakRss, worker.peakRssMb());
      await worker.stop();
      // The same rows loaded by a plain COPY into an identical empty table.
      await copyDb.query('TRUNCATE changes');
      await db.query(`COPY changes TO '/tmp/nestjs-bemi-bench.copy'`);
      t = performance.now();
      await copyDb.query(`COPY changes FROM '/tmp/nestjs-bemi-bench.copy'`);
      copy.push(backlog / ((performance.now() - t) / 1000));
      await copyDb.query('TRUNCATE changes_bare');
      t = performance.now();
      await copyDb.query(`COPY changes_bare FROM '/tmp/nestjs-bemi-bench.copy'`);
      bare.push(backlog / ((performance.now() - t) / 1000));
      if (rep % 2 === 0) perRow.push(await drain({ contextPerRow: true }, perRowCpu));
      log(`capture: backlog repetition ${rep + 1} done`);
    }
    // Lag under a steady load: 100-row statements every 20 ms = 5,000 changes/s. The backlog phase
    // left many dirty buffers; flush them first so a checkpoint does not land in the window.
    await db.query('TRUNCATE changes');
    await db.query('VACUUM ANALYZE bench_event');
    await db.query('CHECKPOINT');
    worker = startWorker(url.toString());
    await worker.ready;
    // The slot still has to decode the WAL of the COPY runs above (other tables, but decoded all
    // the same); measuring from here would time that catch-up, not the steady state. One marker
    // row that arrives means the worker is past it.
    await writeRows(db, 1, 1);
    await waitForCount(db, 1, 300_000);
    await db.query('TRUNCATE changes');
    const started = Date.now();
    let written = 0;
    while (Date.now() - started < loadSeconds * 1000) {
      const tick = Date.now();
      await writeRows(db, 100, 100);
      written += 100;
      await sleep(Math.max(0, 20 - (Date.now() - tick)));
    }
    const achievedRate = written / ((Date.now() - started) / 1000);
    await waitForCount(db, written, 60_000);
    peakRss = Math.max(peakRss, worker.peakRssMb());
    await worker.stop();
    // created_at is the destination transaction's start: the row is visible a few ms later.
    const [lag] = (await db.query(`SELECT percentile_cont(0.5) WITHIN GROUP (ORDER BY ms) AS p50, percentile_cont(0.99) WITHIN GROUP (ORDER BY ms) AS p99
      FROM (SELECT extract(epoch FROM created_at - committed_at) * 1000 AS ms FROM changes) s`)).rows;

    const rows = [
      absoluteRow('capture end to end (backlog)', 'changes/s', median(capture), '≥ 30,000/s', (v) => v >= 30_000, `${backlog.toLocaleString('en-US')}-change backlog of 1,000-row INSERTs; raw server-side pgoutput decoding of the same WAL: ${Math.round(median(raw)).toLocaleString('en-US')} changes/s`),
      ratioRow('capture vs plain COPY into changes', 'rows/s', median(capture), median(copy), 'COPY', '≥ 0.5× COPY', (r) => r >= 0.5),
      ratioRow('capture, context once per run vs per row', 'changes/s', median(capture), median(perRow), 'context per row', '(measured)', () => null,
        `same backlog; spread ${spread(capture)} vs ${spread(perRow)}; CPU per change ${cpuTotal(cpu).toFixed(1)} vs ${cpuTotal(perRowCpu).toFixed(1)} µs`),
      ...(cpu.changes
        ? [
            (() => {
              const us = (k) => (cpu[k] * 1e6) / cpu.changes;
              const total = us('worker') + us('walsender') + us('backends') + us('other');
              return absoluteRow('capture CPU per change (all processes)', 'µs', total, '(diagnostic)', () => null,
                `worker ${us('worker').toFixed(1)}, walsender ${us('walsender').toFixed(1)}, destination backends (and this benchmark's polling) ${us('backends').toFixed(1)}, other server processes ${us('other').toFixed(1)} µs; ` +
                  `${cpus().length} cores at 100% would allow ${Math.round((cpus().length * 1e6) / total).toLocaleString('en-US')} changes/s`);
            })(),
          ]
        : []),
      absoluteRow('plain COPY into index-free changes', 'rows/s', median(bare), '(diagnostic)', () => null, 'the same rows and columns without any index or key: the ceiling of any ingest layout on this server'),
      absoluteRow('commit-to-visible lag p50', 'ms', Number(lag.p50), 'report', () => true, `steady ${Math.round(achievedRate).toLocaleString('en-US')} changes/s for ${loadSeconds} s`),
      absoluteRow('commit-to-visible lag p99', 'ms', Number(lag.p99), '≤ 500 ms', (v) => v <= 500),
      absoluteRow('capture worker peak RSS', 'MB', peakRss, '≤ 300 MB', (v) => v <= 300, 'VmHWM of the worker process over all runs'),
    ];
    return rows;
  } finally {
    await db.query(`SELECT pg_drop_replication_slot('bench_raw')`).catch(() => {});
    await db.end();
    await copyDb.end();
  }
}
