// Jest global setup: one PostgreSQL for the whole run. BEMI_TEST_DATABASE_URL points the suite
// at an external server instead (it must have wal_level=logical and a role that may create
// databases and replication slots).
import { startPostgres } from './postgres-server.mjs';

export default async function globalSetup() {
  if (process.env.BEMI_TEST_DATABASE_URL) return;
  // fsync off: test data is thrown away, and it makes database creation much faster.
  const server = await startPostgres({ extraFlags: ['-c', 'fsync=off', '-c', 'full_page_writes=off'] });
  globalThis.__BEMI_TEST_POSTGRES__ = server;
  // Workers are started after global setup and inherit this.
  process.env.BEMI_TEST_DATABASE_URL = server.url;
}
