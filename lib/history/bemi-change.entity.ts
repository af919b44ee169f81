import { Entity, Index, PrimaryKey, Property } from '@mikro-orm/core';
import type { ChangeOperation } from './history.interfaces';

/**
 * One captured change, mapped to the `changes` table so it can be queried with your own `em`
 * or QueryBuilder: `em.find(BemiChange, { table: 'todo', primaryKey: '26' }, { orderBy: { commitPosition: 'asc', seq: 'asc' } })`.
 * For a non-default schema pass `{ schema: 'audit' }` in the find options.
 *
 * `before`/`after` are keyed by COLUMN names as captured (use `BemiHistory` for property names).
 * The table is written by the capture worker only, hence `readonly`: the ORM never flushes it.
 * Types are spelled out because the entity must not depend on emitted decorator metadata.
 */
@Entity({ tableName: 'changes', readonly: true })
@Index({ properties: ['table', 'primaryKey', 'committedAt'] })
export class BemiChange {
  @PrimaryKey({ type: 'uuid', defaultRaw: 'gen_random_uuid()' })
  id!: string;

  @Property({ type: 'text', fieldName: 'primary_key', nullable: true })
  primaryKey!: string | null;

  @Property({ type: 'json', columnType: 'jsonb', defaultRaw: `'{}'` })
  before!: Record<string, unknown>;

  @Property({ type: 'json', columnType: 'jsonb', defaultRaw: `'{}'` })
  after!: Record<string, unknown>;

  @Property({ type: 'json', columnType: 'jsonb', defaultRaw: `'{}'` })
  context!: Record<string, unknown>;

  @Property({ type: 'text' })
  database!: string;

  @Property({ type: 'text' })
  schema!: string;

  @Property({ type: 'text' })
  table!: string;

  @Property({ type: 'text' })
  operation!: ChangeOperation;

  @Property({ type: 'datetime', columnType: 'timestamptz', fieldName: 'committed_at' })
  committedAt!: Date;

  @Property({ type: 'datetime', columnType: 'timestamptz', fieldName: 'queued_at' })
  queuedAt!: Date;

  @Property({ type: 'datetime', columnType: 'timestamptz', fieldName: 'created_at', defaultRaw: 'now()' })
  createdAt!: Date;

  /** bigint columns come back as decimal strings (exact beyond 2^53). */
  @Property({ type: 'bigint', fieldName: 'transaction_id' })
  transactionId!: string;

  @Property({ type: 'bigint' })
  position!: string;

  @Property({ type: 'bigint', fieldName: 'commit_position' })
  commitPosition!: string;

  @Property({ type: 'integer' })
  seq!: number;
}
