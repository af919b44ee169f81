// Starts the sample: a real PostgreSQL (embedded, wal_level=logical, data kept in .sample-data/
// between runs; or DATABASE_URL), the app's migrations, then the Todo API. Used by
// `npm run sample` (run.mjs) and `npm run sample:demo` (demo.mjs) when no sample is running.
import { createHash } from 'node:crypto';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { othersCanReach, runsAsRoot, startPostgres } from '../test/support/postgres-server.mjs';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const require = createRequire(import.meta.url);

/**
 * .sample-data/postgres, unless we are root in a directory other users cannot enter: the server
 * then runs as "postgres" and could not open it, so the data lives under the temp dir instead
 * (one directory per checkout).
 */
function sampleDataDir() {
  const inCheckout = join(root, '.sample-data', 'postgres');
  if (!runsAsRoot() || othersCanReach(inCheckout)) return inCheckout;
  return join(tmpdir(), `nestjs-bemi-sample-${createHash('sha1').update(root).digest('hex').slice(0, 12)}`, 'postgres');
}

/** @returns {Promise<{ url: string, stop: () => Promise<void> }>} */
export async function startSample({ port = Number(process.env.PORT ?? 3000), log = console.log } = {}) {
  let postgres;
  if (!process.env.DATABASE_URL) {
    const dataDir = sampleDataDir();
    log(`Starting embedded PostgreSQL (data in ${dataDir}) ...`);
    postgres = await startPostgres({ dataDir, persistent: true });
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
