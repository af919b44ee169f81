import { rm } from 'node:fs/promises';

export default async function globalTeardown() {
  const server = globalThis.__BEMI_TEST_POSTGRES__;
  if (!server) return;
  await server.stop();
  await rm(server.dataDir, { recursive: true, force: true });
}
