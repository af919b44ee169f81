import { createHash } from 'node:crypto';
import type { MikroORM } from '@mikro-orm/core';
import type { BuiltSql } from './history.sql';

/** What MikroORM's knex exposes of a pg connection and its pool (or transaction) client. */
interface PgConnection {
  query(config: { name: string; text: string; values: unknown[] }): Promise<{ rows: any[] }>;
}
interface KnexClient {
  acquireConnection(): Promise<PgConnection>;
  releaseConnection(connection: PgConnection): Promise<unknown>;
}

/**
 * PostgreSQL: the prepared statement is gone, or a statement of that name exists already — what a
 * transaction-mode pooler without prepared-statement support causes. Prepare no more.
 */
const POOLER_CODES = new Set(['26000', '42P05']);
/** PostgreSQL: "cached plan must not change result type" — the table's columns changed. */
const RESULT_TYPE_CHANGED = '0A000';

/**
 * Runs a read as a named prepared statement on the connection MikroORM would use for
 * `em.execute()` (the transaction's, when the EntityManager is in one). For `at()` PostgreSQL's
 * planning costs more than executing its few index probes; a prepared statement is planned once
 * per connection. Statement names are a hash of the text, so values never make new statements.
 * Falls back to `em.execute()` for good when the server does not keep prepared statements
 * (e.g. a transaction-mode pooler without support for them).
 */
export class PreparedReader {
  private enabled = true;
  private generation = 0;
  /** Positional text and name hash per statement text (a handful: one per table read). */
  private readonly statements = new Map<string, { text: string; hash: string }>();

  constructor(private readonly orm: MikroORM) {}

  async query<R>(built: BuiltSql, fallback: () => Promise<R[]>): Promise<R[]> {
    if (!this.enabled || built.params.length === 0) return fallback();
    const em = this.orm.em as unknown as {
      getTransactionContext(): { client: KnexClient } | undefined;
      getDriver(): { getConnection(): { getKnex(): { client: KnexClient }; executeQuery<T>(query: string, cb: () => Promise<T>, context?: object): Promise<T> } };
    };
    const connection = em.getDriver().getConnection();
    const client = em.getTransactionContext()?.client ?? connection.getKnex().client;
    const { text, hash } = this.statement(built.sql);
    const pg = await client.acquireConnection();
    try {
      const run = () => {
        const name = `bemi_${this.generation}_${hash}`;
        // executeQuery: MikroORM's query logging, as for em.execute().
        return connection.executeQuery(text, () => pg.query({ name, text, values: built.params }), { query: text, params: built.params });
      };
      try {
        return (await run()).rows as R[];
      } catch (error) {
        const code = (error as { code?: string }).code;
        if (code === RESULT_TYPE_CHANGED) {
          this.generation++; // a fresh name re-prepares against the new columns
          return (await run()).rows as R[];
        }
        if (code && POOLER_CODES.has(code)) {
          this.enabled = false;
          return fallback();
        }
        throw error;
      }
    } finally {
      await client.releaseConnection(pg);
    }
  }

  private statement(sql: string): { text: string; hash: string } {
    let entry = this.statements.get(sql);
    if (!entry) {
      if (this.statements.size >= 256) this.statements.clear();
      const text = positional(sql);
      entry = { text, hash: createHash('sha1').update(text).digest('hex').slice(0, 20) };
      this.statements.set(sql, entry);
    }
    return entry;
  }
}

/**
 * `?` placeholders (as SqlParams builds them for MikroORM) to `$1…`; `\?` is a literal `?` (see
 * `ident` in history.sql.ts), which MikroORM would unescape the same way.
 */
export function positional(sql: string): string {
  let n = 0;
  return sql.replace(/\\\?|\?/g, (m) => (m === '?' ? `$${++n}` : '?'));
}
