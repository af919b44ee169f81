import { randomBytes } from 'node:crypto';
import { Client } from 'pg';

export function adminUrl(): string {
  const url = process.env.BEMI_TEST_DATABASE_URL;
  if (!url) throw new Error('BEMI_TEST_DATABASE_URL is not set: run the tests through jest (its global setup starts PostgreSQL).');
  return url;
}

export function urlFor(database: string): string {
  const url = new URL(adminUrl());
  url.pathname = `/${database}`;
  return url.toString();
}

export interface TestDatabase {
  name: string;
  url: string;
  /** Runs SQL on the test database with a short-lived connection. */
  query<T = any>(sql: string, params?: unknown[]): Promise<T[]>;
  drop(): Promise<void>;
}

/** A fresh database per test file, so files can run in parallel against one server. */
export async function createTestDatabase(label = 'test'): Promise<TestDatabase> {
  const name = `bemi_${label.replace(/[^a-z0-9]/gi, '_').toLowerCase()}_${randomBytes(4).toString('hex')}`;
  await withClient(adminUrl(), (c) => c.query(`CREATE DATABASE "${name}"`));
  const url = urlFor(name);
  return {
    name,
    url,
    query: (sql, params) => withClient(url, async (c) => (await c.query(sql, params as any[])).rows),
    drop: async () => {
      await withClient(adminUrl(), async (c) => {
        await c.query(`SELECT pg_drop_replication_slot(slot_name) FROM pg_replication_slots WHERE database = $1 AND NOT active`, [name]);
        await c.query(`DROP DATABASE IF EXISTS "${name}" WITH (FORCE)`);
      });
    },
  };
}

export async function withClient<T>(url: string, fn: (client: Client) => Promise<T>): Promise<T> {
  const client = new Client({ connectionString: url });
  await client.connect();
  try {
    return await fn(client);
  } finally {
    await client.end();
  }
}
