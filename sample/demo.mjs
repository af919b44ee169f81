// `npm run sample:demo`: plays a short scenario against the sample (the one running at
// SAMPLE_URL / http://127.0.0.1:$PORT, or one it starts itself) and prints the audit trail as
// psql would print `SELECT primary_key, "table", operation, before, after, context, committed_at FROM changes`.
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { startSample } from './start.mjs';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const require = createRequire(import.meta.url);
const { psqlTable, jsonbText, timestamptzText } = require(join(root, '.sample-build', 'sample', 'src', 'demo', 'psql-table.js'));

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

async function reachable(url) {
  try {
    return (await fetch(`${url}/todo`)).ok;
  } catch {
    return false;
  }
}

async function call(url, method, path, { user, body } = {}) {
  const headers = { 'content-type': 'application/json' };
  if (user) {
    headers['x-user-id'] = String(user);
    headers.authorization = `Bearer demo-token-of-${user}`; // masked in the trail: "[REDACTED]"
  }
  const res = await fetch(`${url}${path}`, { method, headers, body: body ? JSON.stringify(body) : undefined });
  if (!res.ok) throw new Error(`${method} ${path} answered ${res.status}: ${await res.text()}`);
  const text = await res.text();
  console.log(`${method.padEnd(6)} ${path.padEnd(22)} ${user ? `(user ${user})` : '(no user)'.padEnd(12)} -> ${res.status} ${text}`);
  return text ? JSON.parse(text) : undefined;
}

async function main() {
  let url = process.env.SAMPLE_URL ?? `http://127.0.0.1:${process.env.PORT ?? 3000}`;
  let started;
  if (!(await reachable(url))) {
    started = await startSample({ log: () => {} });
    url = started.url;
  }
  try {
    const before = await call(url, 'GET', '/changes');
    const sleepTodo = await call(url, 'POST', '/todo', { user: 187234, body: { task: 'Sleep' } });
    await call(url, 'PUT', `/todo/${sleepTodo.id}/complete`, { user: 187234 });
    const walk = await call(url, 'POST', '/todo', { user: 42, body: { task: 'Walk the dog' } });
    await call(url, 'DELETE', `/todo/${walk.id}`, { user: 42 });
    await call(url, 'POST', '/jobs/cleanup');

    // Capture is asynchronous (WAL -> worker -> changes); wait for the five new changes.
    let changes = [];
    for (let i = 0; i < 100; i++) {
      changes = await (await fetch(`${url}/changes`)).json();
      if (changes.length >= before.length + 5) break;
      await sleep(100);
    }
    const recent = changes.slice(before.length);
    console.log(`\n$ psql -c 'SELECT primary_key, "table", operation, before, after, context, committed_at FROM changes'  (this demo's rows, read through BemiHistory: property names, where the table has column names)\n`);
    console.log(
      psqlTable(
        ['primary_key', 'table', 'operation', 'before', 'after', 'context', 'committed_at'],
        recent.map((c) => [c.primaryKey, c.table, c.operation, jsonbText(c.before), jsonbText(c.after), jsonbText(c.context), timestamptzText(c.committedAt)]),
      ),
    );
    console.log(`\nThe todo as it was right after it was created (time travel):`);
    await call(url, 'GET', `/todo/${sleepTodo.id}/at?time=${encodeURIComponent(recent[0]?.committedAt ?? new Date().toISOString())}`);
    console.log(`\nCapture health (the same figures feed @nestjs/terminus):`);
    await call(url, 'GET', '/health');
  } finally {
    await started?.stop();
  }
}

main().catch((error) => {
  console.error(error);
  process.exit(1);
});
