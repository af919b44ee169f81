import { createHash } from 'node:crypto';
import type { MikroORM } from '@mikro-orm/core';
import type { BuiltSql } from './sql-params';

/** A `pg` client or pool: what a named prepared statement needs. */
interface PgQueryable {
  query(config: { name: string; text: string; values: unknown[] }): Promise<{ rows: any[] }>;
}

/** A connection to run one statement on, and how to give it back. */
interface Lease {
  pg: PgQueryable;
  release(): Promise<unknown> | void;
}

/** The parts of MikroORM's SQL connection this reader uses; each major has some of them. */
interface SqlConnection {
  executeQuery<T>(query: string, cb: () => Promise<T>, context?: object): Promise<T>;
  /** MikroORM 6 (knex): the knex instance, whose client hands out pooled `pg` connections. */
  getKnex?(): { client: KnexClient };
  /** MikroORM 7.2+ (kysely): the `pg.Pool` MikroORM created. */
  getNativeClient?(): Promise<{ connect(): Promise<PgQueryable & { release(): void }> }>;
}
interface KnexClient {
  acquireConnection(): Promise<PgQueryable>;
  releaseConnection(connection: PgQueryable): Promise<unknown>;
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
    const connection = this.orm.em.getDriver().getConnection() as unknown as SqlConnection;
    const lease = await this.lease(connection);
    if (!lease) return fallback();
    const { text, hash } = this.statement(built.sql);
    try {
      const run = () => {
        const name = `bemi_${this.generation}_${hash}`;
        // executeQuery: MikroORM's query logging, as for em.execute().
        return connection.executeQuery(text, () => lease.pg.query({ name, text, values: built.params }), { query: text, params: built.params });
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
      await lease.release();
    }
  }

  /**
   * The `pg` connection `em.execute()` would use, found by what the installed MikroORM offers:
   * on 6 knex's pool, or the transaction's own connection; on 7.2+ MikroORM's `pg.Pool`. MikroORM 7
   * keeps a transaction's connection inside kysely, out of reach: reads in a transaction (and on
   * 7.0–7.1, which do not expose the pool) take the plain `em.execute()` path. Undefined = fallback.
   */
  private async lease(connection: SqlConnection): Promise<Lease | undefined> {
    const transaction = (this.orm.em as unknown as { getTransactionContext(): unknown }).getTransactionContext() as { client?: KnexClient } | undefined;
    if (transaction) {
      const client = transaction.client;
      if (!client || typeof client.acquireConnection !== 'function') return undefined;
      const pg = await client.acquireConnection();
      return { pg, release: () => client.releaseConnection(pg) };
    }
    if (typeof connection.getKnex === 'function') {
      const client = connection.getKnex().client;
      const pg = await client.acquireConnection();
      return { pg, release: () => client.releaseConnection(pg) };
    }
    if (typeof connection.getNativeClient === 'function') {
      let pool: Awaited<ReturnType<NonNullable<SqlConnection['getNativeClient']>>>;
      try {
        pool = await connection.getNativeClient();
      } catch {
        return undefined; // a user-supplied kysely instance or dialect: MikroORM has no pool to give
      }
      const pg = await pool.connect();
      return { pg, release: () => pg.release() };
    }
    return undefined;
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
 * `ident` in sql-params.ts), which MikroORM would unescape the same way.
 */
export function positional(sql: string): string {
  let n = 0;
  return sql.replace(/\\\?|\?/g, (m) => (m === '?' ? `$${++n}` : '?'));
}
