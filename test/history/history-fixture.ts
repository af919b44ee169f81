import 'reflect-metadata';
import { EntitySchema, MikroORM } from '@mikro-orm/core';
import { PostgreSqlDriver } from '@mikro-orm/postgresql';
import { BemiChange } from '../../lib/history/bemi-change.entity';
import { BemiHistory } from '../../lib/history/bemi-history';
import type { BemiHistoryOptions } from '../../lib/history/history.interfaces';
import { createChangesTable } from '../support/changes-table';
import { createTestDatabase, type TestDatabase } from '../support/database';
import { Todo, TYPED_TODO_DDL, typedTodoSchema } from '../support/todo';

/** History maps the typed todo table (timestamptz, numeric and integer columns to read back). */
export { Todo };
export const TodoSchema = typedTodoSchema();

export class OrderLine {
  orderId!: number;
  productCode!: string;
  quantity!: number;
}

export const OrderLineSchema = new EntitySchema<OrderLine>({
  class: OrderLine,
  tableName: 'order_line',
  properties: {
    orderId: { type: 'number', primary: true },
    productCode: { type: 'string', columnType: 'text', primary: true },
    quantity: { type: 'integer' },
  },
});

export const APP_DDL = `
  ${TYPED_TODO_DDL};
  CREATE TABLE order_line (order_id int, product_code text, quantity int NOT NULL, PRIMARY KEY (order_id, product_code));
  CREATE TABLE unmapped_note (id uuid PRIMARY KEY, body text);
`;

export interface HistoryEnv {
  db: TestDatabase;
  orm: MikroORM;
  history: BemiHistory;
  trail: TrailWriter;
  close(): Promise<void>;
}

export async function historyEnv(label: string, options: BemiHistoryOptions = {}, extraDdl = ''): Promise<HistoryEnv> {
  const db = await createTestDatabase(label);
  await db.query(APP_DDL);
  await createChangesTable(db, { schema: options.schema });
  if (extraDdl) await db.query(extraDdl);
  const orm = await MikroORM.init({
    driver: PostgreSqlDriver,
    clientUrl: db.url,
    entities: [TodoSchema, OrderLineSchema, BemiChange],
    allowGlobalContext: true,
    debug: false,
  });
  const history = BemiHistory.create(orm, options);
  const trail = new TrailWriter(db, options.schema ?? 'public');
  return {
    db,
    orm,
    history,
    trail,
    close: async () => {
      await orm.close(true);
      await db.drop();
    },
  };
}

export interface FixtureChange {
  table: string;
  operation: 'CREATE' | 'UPDATE' | 'DELETE' | 'TRUNCATE';
  key?: string | null;
  before?: Record<string, unknown>;
  /** An object, or raw JSON text (to write numbers JavaScript cannot hold). */
  after?: Record<string, unknown> | string;
  context?: Record<string, unknown>;
  schema?: string;
  database?: string;
}

/**
 * Writes trail rows the way the capture worker does (one transaction = one commit position,
 * seq = index in it) and, with `apply`, makes the live table match, so a test states a history
 * once and both sides agree.
 */
export class TrailWriter {
  private commitPosition = 1_000_000n;
  private xid = 700n;

  constructor(
    private readonly db: TestDatabase,
    private readonly changesSchema: string,
  ) {}

  async startCapture(startedAt: string, slot = 'bemi_slot'): Promise<void> {
    await this.db.query(
      `INSERT INTO "${this.changesSchema}"._bemi_capture_state (slot_name, database, started_at) VALUES ($1, current_database(), $2)
       ON CONFLICT (slot_name) DO UPDATE SET started_at = EXCLUDED.started_at`,
      [slot, startedAt],
    );
  }

  /** Records one committed transaction; returns the change ids in order. */
  async commit(committedAt: string, changes: FixtureChange[], options: { apply?: boolean } = {}): Promise<string[]> {
    this.commitPosition += 1000n;
    this.xid += 1n;
    const ids: string[] = [];
    for (const [seq, c] of changes.entries()) {
      const [row] = await this.db.query<{ id: string }>(
        `INSERT INTO "${this.changesSchema}".changes (primary_key, before, after, context, database, schema, "table", operation,
           committed_at, queued_at, transaction_id, position, commit_position, seq)
         VALUES ($1, $2, $3, $4, coalesce($5, current_database()), $6, $7, $8, $9, $9, $10, $11, $12, $13) RETURNING id`,
        [
          c.key ?? null,
          JSON.stringify(c.before ?? {}),
          typeof c.after === 'string' ? c.after : JSON.stringify(c.after ?? {}),
          JSON.stringify(c.context ?? {}),
          c.database ?? null,
          c.schema ?? 'public',
          c.table,
          c.operation,
          committedAt,
          this.xid.toString(),
          (this.commitPosition - 500n + BigInt(seq)).toString(),
          this.commitPosition.toString(),
          seq,
        ],
      );
      ids.push(row.id);
      if (options.apply) await this.applyToLive(c);
    }
    return ids;
  }

  private async applyToLive(c: FixtureChange): Promise<void> {
    const t = `"${c.schema ?? 'public'}"."${c.table}"`;
    const keyMatch = `(SELECT array_agg(a.attname) FROM pg_index i JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = ANY (i.indkey) WHERE i.indrelid = '${t}'::regclass AND i.indisprimary)`;
    const remove = async (image: Record<string, unknown>) =>
      this.db.query(
        `DO $$ DECLARE cols text[] := ${keyMatch}; cond text; BEGIN
           SELECT string_agg(format('t.%I = img.%I', c, c), ' AND ') INTO cond FROM unnest(cols) c;
           EXECUTE format('DELETE FROM ${t} t USING jsonb_populate_record(NULL::${t}, %L::jsonb) img WHERE %s', ${pgLiteral(JSON.stringify(image))}, cond);
         END $$`,
      );
    const insert = (image: Record<string, unknown>) =>
      this.db.query(`INSERT INTO ${t} SELECT * FROM jsonb_populate_record(NULL::${t}, $1::jsonb)`, [JSON.stringify(image)]);
    const after = typeof c.after === 'string' ? JSON.parse(c.after) : c.after!;
    if (c.operation === 'CREATE') await insert(after);
    if (c.operation === 'UPDATE') {
      await remove(c.before && Object.keys(c.before).length ? c.before : after);
      await insert(after);
    }
    if (c.operation === 'DELETE') await remove(c.before!);
    if (c.operation === 'TRUNCATE') await this.db.query(`DELETE FROM ${t}`);
  }
}

function pgLiteral(text: string): string {
  return `'${text.replace(/'/g, "''")}'`;
}

/** Timestamps of a test's story: minute `m`, plus `us` microseconds, on a fixed day (UTC). */
export function t(m: number, us = 0): string {
  const base = Date.UTC(2024, 2, 1, 10, 0, 0);
  const ms = base + m * 60_000 + Math.floor(us / 1000);
  return new Date(ms).toISOString().slice(0, -1) + String(us % 1000).padStart(3, '0') + 'Z';
}
