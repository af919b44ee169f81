// `npm run sample`: a real PostgreSQL (embedded, wal_level=logical, data kept in .sample-data/
// between runs; or DATABASE_URL), the app's migrations, then the Todo API.
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { startPostgres } from '../test/support/postgres-server.mjs';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const require = createRequire(import.meta.url);

async function main() {
  let postgres;
  if (!process.env.DATABASE_URL) {
    console.log('Starting embedded PostgreSQL (data in .sample-data/postgres) ...');
    postgres = await startPostgres({ dataDir: join(root, '.sample-data', 'postgres'), persistent: true });
    process.env.DATABASE_URL = postgres.url.replace(/\/postgres$/, '/postgres');
  }
  const port = Number(process.env.PORT ?? 3000);
  const { bootstrap } = require(join(root, '.sample-build', 'sample', 'src', 'main.js'));
  let app;
  try {
    app = await bootstrap(port);
  } catch (error) {
    await postgres?.stop();
    throw error;
  }

  let stopping = false;
  const stop = async (signal) => {
    if (stopping) return;
    stopping = true;
    console.log(`\n${signal}: stopping the app and PostgreSQL ...`);
    await app.close();
    await postgres?.stop();
    process.exit(0);
  };
  process.on('SIGINT', () => void stop('SIGINT'));
  process.on('SIGTERM', () => void stop('SIGTERM'));

  const url = `http://127.0.0.1:${port}`;
  console.log(`
nestjs-bemi sample is running at ${url}  (Ctrl-C stops it and PostgreSQL)

Try:
  curl -s -X POST ${url}/todo -H 'content-type: application/json' -H 'x-user-id: 187234' -d '{"task": "Sleep"}'
  curl -s -X PUT ${url}/todo/1/complete -H 'x-user-id: 187234'
  curl -s ${url}/todo/1/history
`);
}

main().catch((error) => {
  console.error(error);
  process.exit(1);
});
