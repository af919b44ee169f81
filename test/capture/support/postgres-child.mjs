// A PostgreSQL server of its own, for tests that stop or crash the server. Prints one JSON line
// ({ url, port, dataDir }) once it accepts connections; stops it on SIGTERM.
import { startPostgres } from '../../support/postgres-server.mjs';

const [dataDir, port, ...extraFlags] = process.argv.slice(2);
const server = await startPostgres({ dataDir, port: Number(port), persistent: true, extraFlags: ['-c', 'fsync=off', ...extraFlags] });
process.stdout.write(`${JSON.stringify({ url: server.url, port: server.port, dataDir: server.dataDir })}\n`);
process.on('SIGTERM', async () => {
  await server.stop();
  process.exit(0);
});
