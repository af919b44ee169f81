// Jest global setup: one PostgreSQL for the whole run. BEMI_TEST_DATABASE_URL points the suite
// at an external server instead (it must have wal_level=logical and a role that may create
// databases and replication slots). BEMI_TEST_PG_VERSION picks the embedded server's major version.
import { startPostgres } from './postgres-server.mjs';

export default async function globalSetup() {
  if (process.env.BEMI_TEST_DATABASE_URL) return;
  // fsync off: test data is thrown away, and it makes database creation much faster.
  const server = await startPostgres({ extraFlags: ['-c', 'fsync=off', '-c', 'full_page_writes=off'] });
  globalThis.__BEMI_TEST_POSTGRES__ = server;
  // Workers are started after global setup and inherit these. The major version lets a test
  // check that the server really is the one asked for.
  process.env.BEMI_TEST_DATABASE_URL = server.url;
  process.env.BEMI_TEST_EMBEDDED_PG_VERSION = String(server.version);
  process.stderr.write(`\nnestjs-bemi tests: embedded PostgreSQL ${server.version} on port ${server.port}\n`);
}
