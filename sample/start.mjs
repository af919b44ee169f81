// Starts the sample: a real PostgreSQL (embedded, wal_level=logical, data kept in .sample-data/
// between runs; or DATABASE_URL), the app's migrations, then the Todo API. Used by
// `npm run sample` (run.mjs) and `npm run sample:demo` (demo.mjs) when no sample is running.
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { startPostgres } from '../test/support/postgres-server.mjs';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const require = createRequire(import.meta.url);

/** @returns {Promise<{ url: string, stop: () => Promise<void> }>} */
export async function startSample({ port = Number(process.env.PORT ?? 3000), log = console.log } = {}) {
  let postgres;
  if (!process.env.DATABASE_URL) {
    log('Starting embedded PostgreSQL (data in .sample-data/postgres) ...');
    postgres = await startPostgres({ dataDir: join(root, '.sample-data', 'postgres'), persistent: true });
    process.env.DATABASE_URL = postgres.url;
  }
  const { bootstrap } = require(join(root, '.sample-build', 'sample', 'src', 'main.js'));
  let app;
  try {
    app = await bootstrap(port);
  } catch (error) {
    await postgres?.stop();
    throw error;
  }
  let stopped = false;
  return {
    url: `http://127.0.0.1:${port}`,
    stop: async () => {
      if (stopped) return;
      stopped = true;
      await app.close();
      await postgres?.stop();
    },
  };
}
