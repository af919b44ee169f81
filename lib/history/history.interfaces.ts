import type { EntityManager, EntityName } from '@mikro-orm/core';
import type { BemiContextStore } from '../context/bemi-context.store';
import type { TrailLocationOptions } from '../trail/trail-location';

export type ChangeOperation = 'CREATE' | 'UPDATE' | 'DELETE' | 'TRUNCATE';

/**
 * A moment in time: a `Date`, or an ISO 8601 string WITH an offset (`Z`, `+02:00`), which may
 * carry microseconds (`2023-12-11T17:09:14.123456Z`). A `Date` only has milliseconds, so it
 * stands for its whole millisecond: as an upper bound (`at()`, `to`) it includes changes
 * committed up to the end of that millisecond, so `at(change.committedAt)` includes `change`.
 */
export type HistoryInstant = Date | string;

/** What a history method is about: an entity class/schema/name, or a table name (`'todo'`, `'audit.todo'`). */
export type HistoryTarget<T extends object = any> = EntityName<T> | string;

/** `BemiHistory.create(orm, options)`: where the trail is (default `public.changes`), the context store, and the HMAC key. */
export interface BemiHistoryOptions extends TrailLocationOptions {
  /** Context store used to attach `{ revertOf }` to revert writes. Default: the nestjs-cls store. */
  store?: BemiContextStore;
  /** The capture's `rules.hmacKey`, so that reverts can check HMAC-redacted columns. Default: none (such reverts are refused). */
  hmacKey?: string;
}

/** One row of the audit trail, with `before`/`after` keyed by entity property names when the table is mapped. */
export interface HistoryChange<T extends object = Record<string, unknown>> {
  id: string;
  /** Opaque keyset cursor: pass it as `after` to get the next page. */
  cursor: string;
  database: string;
  schema: string;
  table: string;
  /** Entity class name when the table is mapped by MikroORM. */
  entity?: string;
  /** Text of the primary key (a JSON array string for composite keys), null for TRUNCATE. */
  primaryKey: string | null;
  /** The key before this UPDATE when it changed the key (the record it ends); null otherwise. */
  previousKey: string | null;
  operation: ChangeOperation;
  before: Partial<Record<keyof T & string, unknown>> & Record<string, unknown>;
  after: Partial<Record<keyof T & string, unknown>> & Record<string, unknown>;
  /**
   * The application context of the statement. A context capture did not believe (its role is not
   * trusted) is under `_bemi.untrusted` instead: `{ _bemi: { untrusted: "<why>", context: {...} } }`.
   */
  context: Record<string, unknown>;
  /** The database role the writing session acted as (SET ROLE, else its login role); null when no trigger said (older trails). */
  role: string | null;
  /** The database role that logged in (the same unless SET ROLE); null when no trigger said. */
  sessionRole: string | null;
  /** Commit time (milliseconds; see `commitTimestamp` for the exact value). */
  committedAt: Date;
  /** Commit time with microseconds, UTC ISO 8601: lossless input for `at()` and `from`/`to`. */
  commitTimestamp: string;
  transactionId: string;
  /** LSN of the change and of its commit, as decimal strings (bigint). */
  position: string;
  commitPosition: string;
  /** Index of the change within its transaction. */
  seq: number;
}

export interface ChangesQuery {
  /** A single record: scalar key, `{ prop: value }` object, or an array in key order. Needs an entity/table. */
  primaryKey?: unknown;
  /** Committed at or after (inclusive). */
  from?: HistoryInstant;
  /** Committed at or before (inclusive). */
  to?: HistoryInstant;
  operation?: ChangeOperation | ChangeOperation[];
  /** Changes whose context contains this object (JSON containment, GIN-indexed). */
  context?: Record<string, unknown>;
  /** Changes whose session acted as (SET ROLE), or logged in as, this database role (or one of these). */
  role?: string | string[];
  /** Only changes where at least one of these properties (or columns) differs between before and after. */
  changedFields?: string[];
  /** Page size, 1..10000. Default 1000. */
  limit?: number;
  /** Continue after this cursor (or change). */
  after?: string | Pick<HistoryChange, 'cursor'>;
  /** `asc` (oldest first, default) or `desc`. Commit order, then order within the transaction. */
  order?: 'asc' | 'desc';
}

export interface TableAtOptions<T extends object = any> {
  /** Equality filter on the reconstructed rows, by property (or column) name; an array means "one of". */
  where?: Partial<Record<keyof T & string, unknown>> | Record<string, unknown>;
  /** Return at most this many rows (ordered by primary key). */
  limit?: number;
}

export interface RevertOptions {
  /** Entity manager to write through (its transaction, if one is open, is joined). Default: the ORM's. */
  em?: EntityManager;
}

/** `{ field: [before, after] }` for the fields that differ; `undefined` marks a side without the field. */
export type HistoryDiff = Record<string, [unknown, unknown]>;
