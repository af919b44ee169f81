import { BigIntType, EntitySchema } from '@mikro-orm/core';
import type { ChangeOperation } from './history.interfaces';
import { CHANGES_TABLE, changeContextSql } from '../trail/changes-table';
import { quoteIdent } from '../shared/sql-quote';

/**
 * One captured change, mapped to the `changes` table so it can be queried with your own `em`
 * or QueryBuilder: `em.find(BemiChange, { table: 'todo', primaryKey: '26' }, { orderBy: { commitPosition: 'asc', seq: 'asc' } })`.
 * List `BemiChange` in your ORM's `entities`. For a non-default schema pass `{ schema: 'audit' }`
 * in the find options.
 *
 * `before`/`after` are keyed by COLUMN names as captured (use `BemiHistory` for property names).
 * The table is written by the capture worker only, hence `readonly`: the ORM never flushes it.
 */
export class BemiChange {
  id!: string;
  primaryKey!: string | null;
  /** The key an UPDATE changed (the record it ends); null otherwise. */
  previousKey!: string | null;
  before!: Record<string, unknown>;
  after!: Record<string, unknown>;
  /**
   * The statement's context, for every row (read through the row holding it: rows of a statement
   * store it once). Untrusted context is under `_bemi.untrusted` (docs/security.md).
   */
  context!: Record<string, unknown>;
  /** The database role the writing session acted as (SET ROLE, else its login role); null when no trigger said. */
  role!: string | null;
  /** The database role that logged in. */
  sessionRole!: string | null;
  database!: string;
  schema!: string;
  table!: string;
  operation!: ChangeOperation;
  committedAt!: Date;
  queuedAt!: Date;
  createdAt!: Date;
  /** bigint columns come back as decimal strings (exact beyond 2^53) on every MikroORM major. */
  transactionId!: string;
  position!: string;
  commitPosition!: string;
  seq!: number;
}

const jsonb = { type: 'json', columnType: 'jsonb', defaultRaw: `'{}'` } as const;
const timestamptz = { type: 'datetime', columnType: 'timestamptz' } as const;
// An explicit mode, so that every MikroORM version hydrates these columns as decimal strings.
const bigintText = () => ({ type: new BigIntType('string'), columnType: 'bigint' });

/**
 * `context` as a formula over the row and its holder. MikroORM 6 calls a formula with (table,
 * columns), 7 with (columns, table); on both the first argument prints as the alias and the table
 * argument is the one with `qualifiedName` (older 6.x pass the alias alone: then the table is
 * `changes` on the search path).
 */
function contextFormula(first: unknown, second?: unknown): string {
  const table = [first, second].find((a): a is { name: string; schema?: string } => typeof a === 'object' && a !== null && 'qualifiedName' in a);
  const changes = table ? `${table.schema ? `${quoteIdent(table.schema)}.` : ''}${quoteIdent(table.name)}` : quoteIdent(CHANGES_TABLE);
  return changeContextSql(changes, String(first));
}

/**
 * The mapping, as an `EntitySchema` rather than decorators: decorators live in `@mikro-orm/core`
 * on MikroORM 6 and in `@mikro-orm/decorators` on 7, `EntitySchema` is in core on both. A schema
 * with `class` registers that class, so `entities: [BemiChange]` and `em.find(BemiChange, …)` work.
 */
export const BemiChangeSchema = new EntitySchema<BemiChange>({
  class: BemiChange,
  tableName: 'changes',
  readonly: true,
  indexes: [{ properties: ['table', 'primaryKey', 'committedAt'] }],
  properties: {
    id: { type: 'uuid', primary: true, defaultRaw: 'gen_random_uuid()' },
    primaryKey: { type: 'text', fieldName: 'primary_key', nullable: true },
    previousKey: { type: 'text', fieldName: 'previous_key', nullable: true },
    before: { ...jsonb },
    after: { ...jsonb },
    context: { type: 'json', formula: contextFormula as never },
    role: { type: 'text', nullable: true },
    sessionRole: { type: 'text', fieldName: 'session_role', nullable: true },
    database: { type: 'text' },
    schema: { type: 'text' },
    table: { type: 'text' },
    operation: { type: 'text' },
    committedAt: { ...timestamptz, fieldName: 'committed_at' },
    queuedAt: { ...timestamptz, fieldName: 'queued_at' },
    createdAt: { ...timestamptz, fieldName: 'created_at', defaultRaw: 'now()' },
    transactionId: { ...bigintText(), fieldName: 'transaction_id' },
    position: { ...bigintText() },
    commitPosition: { ...bigintText(), fieldName: 'commit_position' },
    seq: { type: 'integer' },
  },
});
