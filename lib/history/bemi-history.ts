import { Inject, Injectable, Logger, Optional } from '@nestjs/common';
import { EntitySchema, MikroORM, type EntityManager } from '@mikro-orm/core';
import { BEMI_RESOLVED_OPTIONS } from '../options/options.constants';
import { resolveTrailLocation } from '../trail/trail-location';
import type { BemiResolvedOptions } from '../options/bemi-options.interfaces';
import { UNCHANGED_TOAST_MARKER } from '../trail/json-values';
import { BemiContextStore } from '../context/bemi-context.store';
import { isRedactedValue } from '../rules/rules.constants';
import type { BemiChange } from './bemi-change.entity';
import {
  BemiBeforeCaptureError,
  BemiChangeNotFoundError,
  BemiHistoryArgumentError,
  BemiHistoryError,
  BemiHistoryUnavailableError,
  BemiRevertConflictError,
  BemiRevertUnsupportedError,
  BemiUnknownEntityError,
} from './history.errors';
import type {
  BemiHistoryOptions,
  ChangeOperation,
  ChangesQuery,
  HistoryChange,
  HistoryDiff,
  HistoryInstant,
  HistoryTarget,
  RevertOptions,
  TableAtOptions,
} from './history.interfaces';
import { decodeCursor, diffChange, hydrateDetached, imageOf, toHistoryChange, type MappingInfo, type RawChangeRow } from './history-mapper';
import {
  captureStartSql,
  changeByIdSql,
  changesSql,
  lockAndCompareSql,
  preflightSql,
  keyCheckSql,
  qualified,
  recordAtSql,
  revertCreateSql,
  revertDeleteSql,
  revertUpdateSql,
  tableAtSql,
  trailHasTableSql,
  transactionSql,
  type BuiltSql,
  type LiveTable,
  type TrailLocation,
  type TrailPosition,
} from './history.sql';
import { keyValues, TargetResolver, type ResolvedTarget } from './history-target';
import { PreparedReader } from './prepared-reader';
import { describe, parseInstant, type Instant } from './history-time';

const OPERATIONS: readonly ChangeOperation[] = ['CREATE', 'UPDATE', 'DELETE', 'TRUNCATE'];
const QUERY_KEYS = new Set(['primaryKey', 'from', 'to', 'operation', 'context', 'changedFields', 'limit', 'after', 'order']);
const DEFAULT_LIMIT = 1000;
const MAX_LIMIT = 10_000;
/** PostgreSQL errors raised when a key value cannot be cast to the key column's type. */
const BAD_VALUE_CODES = new Set(['22P02', '22003', '22007', '22008', '22001', '22023']);

type ChangeRef = HistoryChange<any> | BemiChange | string;

/**
 * Reads the audit trail and reconstructs records or whole tables as of any moment since capture
 * started; reverts changes through the application's EntityManager so reverts are audited too.
 *
 * Nest: add `BemiHistory` to BemiModule's providers/exports. Elsewhere: `BemiHistory.create(orm)`.
 */
@Injectable()
export class BemiHistory {
  private readonly loc: TrailLocation;
  private readonly resolver?: TargetResolver;
  private readonly prepared?: PreparedReader;
  private readonly store: BemiContextStore;
  private captureStart?: { value: bigint | null; text: string | null; at: number };
  private readonly logger = new Logger('BemiHistory');
  private warnedDeletedIndex = false;
  private static readonly CAPTURE_START_TTL_MS = 10_000;

  constructor(
    // Optional so that an app without a default MikroORM still boots; methods then say what to do.
    @Optional() @Inject(MikroORM) private readonly maybeOrm: MikroORM | undefined,
    @Optional() @Inject(BEMI_RESOLVED_OPTIONS) moduleOptions?: Pick<BemiResolvedOptions, 'trail'> | null,
    @Optional() store?: BemiContextStore,
  ) {
    // The trail is where the capture worker writes it, unless told otherwise (resolved at startup).
    const trail = moduleOptions?.trail ?? resolveTrailLocation(undefined);
    const { schema, table, captureStateTable: stateTable } = trail;
    for (const [name, value] of Object.entries({ schema, table, captureStateTable: stateTable })) {
      if (typeof value !== 'string' || value === '') throw new BemiHistoryArgumentError('constructor', name, `must be a non-empty string, got ${describe(value)}.`);
    }
    this.loc = {
      changes: qualified(schema, table),
      captureState: qualified(schema, stateTable),
      captureStateName: { schema, table: stateTable },
      database: trail.database ?? null,
    };
    this.resolver = maybeOrm ? new TargetResolver(maybeOrm) : undefined;
    this.prepared = maybeOrm ? new PreparedReader(maybeOrm) : undefined;
    this.store = store ?? new BemiContextStore();
  }

  /** For use without Nest: `BemiHistory.create(orm, { schema: 'audit' })`. */
  static create(orm: MikroORM, options: BemiHistoryOptions = {}): BemiHistory {
    const { store, ...location } = options;
    return new BemiHistory(orm, { trail: resolveTrailLocation(location) }, store);
  }

  // ---- reading the trail ------------------------------------------------------------------

  /**
   * Changes in commit order (oldest first unless `order: 'desc'`), filtered, one page at a time.
   * `changes(Todo, { primaryKey: 26 })` is a record's trail; `changes({ context: { userId: 1 } })`
   * everything one actor did. Continue with `{ after: page[page.length - 1].cursor }`.
   */
  async changes<T extends object>(target: HistoryTarget<T>, query?: ChangesQuery): Promise<HistoryChange<T>[]>;
  async changes(query?: ChangesQuery): Promise<HistoryChange[]>;
  async changes(targetOrQuery?: HistoryTarget | ChangesQuery, maybeQuery?: ChangesQuery): Promise<HistoryChange<any>[]> {
    const M = 'changes';
    const isQuery = targetOrQuery === undefined || (isPlainObject(targetOrQuery) && !(targetOrQuery instanceof EntitySchema));
    const target = isQuery ? undefined : (targetOrQuery as HistoryTarget);
    const query = ((isQuery ? targetOrQuery : maybeQuery) ?? {}) as ChangesQuery;
    if (!isPlainObject(query)) throw new BemiHistoryArgumentError(M, 'query', `must be an object, got ${describe(query)}.`);
    for (const key of Object.keys(query)) {
      if (!QUERY_KEYS.has(key)) throw new BemiHistoryArgumentError(M, 'query', `has an unknown option "${key}"; known: ${[...QUERY_KEYS].join(', ')}.`);
    }
    const resolved = target === undefined ? undefined : await this.resolve(target, M, false);
    if (query.primaryKey !== undefined && !resolved) {
      throw new BemiHistoryArgumentError(M, 'primaryKey', 'needs an entity or table: changes(Todo, { primaryKey: 26 }).');
    }
    const from = query.from === undefined ? undefined : parseInstant(query.from, M, 'from');
    const to = query.to === undefined ? undefined : parseInstant(query.to, M, 'to');
    if (from && to && to.upper < from.lower) {
      throw new BemiHistoryArgumentError(M, 'to', `(${to.upper}) is before "from" (${from.lower}).`);
    }
    const operations = query.operation === undefined ? undefined : [query.operation].flat();
    for (const op of operations ?? []) {
      if (!OPERATIONS.includes(op as ChangeOperation)) throw new BemiHistoryArgumentError(M, 'operation', `must be one of ${OPERATIONS.join(', ')}, got ${describe(op)}.`);
    }
    if (query.context !== undefined && !isPlainObject(query.context)) {
      throw new BemiHistoryArgumentError(M, 'context', `must be a plain object to match against, got ${describe(query.context)}.`);
    }
    const changedColumns = query.changedFields === undefined ? undefined : this.columnsOf(resolved, query.changedFields, M, 'changedFields');
    const limit = checkLimit(query.limit, M, DEFAULT_LIMIT);
    const order = query.order ?? 'asc';
    if (order !== 'asc' && order !== 'desc') throw new BemiHistoryArgumentError(M, 'order', `must be "asc" or "desc", got ${describe(order)}.`);

    const built = changesSql(this.loc, {
      table: resolved && { schema: resolved.schema, table: resolved.table },
      keyText: query.primaryKey === undefined ? undefined : { live: resolved!, values: keyValues(resolved!, query.primaryKey, M) },
      fromLower: from?.lower,
      toUpper: to?.upper,
      operations,
      context: query.context === undefined ? undefined : JSON.stringify(query.context),
      changedColumns,
      after: query.after === undefined ? undefined : decodeCursor(query.after, M),
      order,
      limit,
    });
    const rows = await this.run<RawChangeRow>(built, M, 'primaryKey');
    return this.mapChanges(rows, resolved);
  }

  /** One change by id. */
  async change(id: string): Promise<HistoryChange> {
    return this.mapChanges([await this.fetchChange(id, 'change')])[0];
  }

  /** All changes committed in the same transaction as `change`, in order. */
  async transaction(change: ChangeRef): Promise<HistoryChange[]> {
    const row = await this.rowOf(change, 'transaction');
    const rows = await this.run<RawChangeRow>(transactionSql(this.loc, row.commit_position, row.transaction_id), 'transaction');
    return this.mapChanges(rows);
  }

  /** `{ field: [before, after] }` for the fields the change modified (property names for mapped tables). */
  diff(change: HistoryChange<any> | BemiChange): HistoryDiff {
    if (!change || typeof change !== 'object' || !('before' in change) || !('after' in change)) {
      throw new BemiHistoryArgumentError('diff', 'change', `must be a change returned by BemiHistory or a BemiChange entity, got ${describe(change)}.`);
    }
    if (isBemiChangeEntity(change)) {
      const mapping = this.mappingFor(change.schema, change.table);
      const mapped = toHistoryChange(entityToRaw(change), mapping, this.orm.em.getPlatform());
      return diffChange(mapped);
    }
    return diffChange(change as HistoryChange);
  }

  // ---- time travel ------------------------------------------------------------------------

  /**
   * The record as it was at `at` (inclusive): an entity instance that no EntityManager manages
   * (a plain row for unmapped tables), or null if it did not exist then.
   */
  async at<T extends object>(target: HistoryTarget<T>, primaryKey: unknown, at: HistoryInstant): Promise<T | null> {
    const M = 'at';
    const instant = parseInstant(at, M, 'at');
    const resolved = await this.resolve(target, M, true);
    const key = keyValues(resolved, primaryKey, M);
    // One statement: the rule is applied by SQL probes, the image comes back as a typed row.
    const [row] = await this.runAt(recordAtSql(this.loc, resolved, key, instant.upper), resolved, key);
    await this.checkCaptureStart(row._bemi_state_exists as boolean, instant, M, 'at');
    const decision = row._bemi_decision as AtDecision;
    const keyLabel = [String(row._bemi_key)];
    if (decision === 'noimage') throw noImageError(M, resolved, keyLabel, instant.upper);
    if (decision === 'truncated') {
      throw new BemiHistoryUnavailableError(
        `BemiHistory.at(): ${resolved.label} was truncated after ${instant.upper}, and record ${keyLabel[0]} had no change between that moment and the TRUNCATE, so its state then was not recorded.`,
      );
    }
    if (row._bemi_unresolved) throw toastError(M, resolved, keyLabel, [String(row._bemi_unresolved)]);
    // 'none': did not exist then; 'live' without a live row: never existed (as far as anyone knows).
    if (decision === 'none' || !(decision === 'image' || decision === 'live') || !hasRowColumns(row, resolved)) return null;
    for (const name of Object.keys(row)) if (name.startsWith('_bemi_')) delete row[name];
    return this.toResults<T>(resolved, [row])[0];
  }

  /**
   * Runs at()'s statement. A value that does not fit a key column fails the cast: that is the
   * caller's argument; any other conversion error (an image that no longer fits the table) is not.
   */
  private async runAt(built: BuiltSql, target: ResolvedTarget, key: string[]): Promise<Record<string, unknown>[]> {
    try {
      return await this.prepared!.query(built, () => this.run<Record<string, unknown>>(built, 'at'));
    } catch (error) {
      const code = (error as { code?: string }).code;
      if (code && BAD_VALUE_CODES.has(code)) await this.run(keyCheckSql(target, key), 'at', 'primaryKey');
      throw error;
    }
  }

  /**
   * Every row of the table as of `at`: the trail's state for rows that have changes, the live
   * row for rows that never changed. Ordered by primary key.
   */
  async tableAt<T extends object>(target: HistoryTarget<T>, at: HistoryInstant, options: TableAtOptions<T> = {}): Promise<T[]> {
    const M = 'tableAt';
    const instant = parseInstant(at, M, 'at');
    if (!isPlainObject(options)) throw new BemiHistoryArgumentError(M, 'options', `must be an object, got ${describe(options)}.`);
    const resolved = await this.resolve(target, M, true);
    if (resolved.keyColumns.length === 0) {
      throw new BemiHistoryArgumentError(M, 'entity', `${resolved.label} has no primary key, so its rows cannot be told apart in the trail.`);
    }
    const limit = options.limit === undefined ? null : checkLimit(options.limit, M, 0, Number.MAX_SAFE_INTEGER, 'options.limit');
    const where = this.whereOf(resolved, options.where, M);
    const { truncateBefore, truncateAfter, settled, deletedIndex } = await this.preflight(resolved, instant, M, 'at');
    if (truncateAfter && !truncateBefore) {
      throw new BemiHistoryUnavailableError(
        `BemiHistory.tableAt(): ${resolved.label} was truncated after ${instant.upper}; rows that existed then and had not changed before the TRUNCATE were not recorded, so the table at that moment cannot be rebuilt. at() still answers for records that changed in between.`,
      );
    }
    // The strategies differ only in speed (see TableAtStrategy); 'live' needs the deleted-keys
    // index and no TRUNCATE after T (rows a TRUNCATE erased are neither live nor deleted).
    const strategy = deletedIndex && !truncateAfter ? 'live' : settled ? 'latest' : 'keys';
    if (!deletedIndex) this.warnMissingDeletedIndex();
    const rows = await this.run<Record<string, unknown>>(tableAtSql(this.loc, resolved, instant.upper, truncateBefore, truncateAfter, where, limit, strategy), M);
    const unfilled = rows.filter((r) => r._bemi_state === 'toast');
    if (unfilled.length) throw toastError(M, resolved, unfilled.map((r) => String(r._bemi_key)), unfilled.map((r) => String(r._bemi_detail)));
    const imageless = rows.filter((r) => r._bemi_state === 'noimage');
    if (imageless.length) throw noImageError(M, resolved, imageless.map((r) => String(r._bemi_key)), instant.upper);
    return this.toResults<T>(resolved, rows);
  }

  // ---- reverting --------------------------------------------------------------------------

  /**
   * Applies the inverse of one change through the EntityManager, in a transaction, with
   * `{ revertOf: <change id> }` merged into the current context. Refuses (BemiRevertConflictError)
   * when the row is no longer what the change left behind.
   */
  async revert(change: ChangeRef, options: RevertOptions = {}): Promise<void> {
    const row = await this.rowOf(change, 'revert');
    await this.revertRows([row], options, 'revert');
  }

  /** Reverts every change of `change`'s transaction, newest first, all or nothing. */
  async revertTransaction(change: ChangeRef, options: RevertOptions = {}): Promise<void> {
    const row = await this.rowOf(change, 'revertTransaction');
    const rows = await this.run<RawChangeRow>(transactionSql(this.loc, row.commit_position, row.transaction_id), 'revertTransaction');
    await this.revertRows(rows.reverse(), options, 'revertTransaction');
  }

  private async revertRows(rows: RawChangeRow[], options: RevertOptions, method: string): Promise<void> {
    const em = (options.em ?? this.orm.em) as EntityManager & { execute?: (sql: string, params: unknown[]) => Promise<any[]> };
    if (typeof em?.transactional !== 'function') throw new BemiHistoryArgumentError(method, 'options.em', `must be a MikroORM EntityManager, got ${describe(em)}.`);
    const currentDb = this.loc.database ?? (await this.run<{ db: string }>({ sql: 'SELECT current_database() AS db', params: [] }, method))[0].db;
    await em.transactional(async (tem) => {
      const exec = (built: BuiltSql) => (tem as unknown as { execute(sql: string, params: unknown[]): Promise<any[]> }).execute(built.sql, built.params);
      for (const row of rows) {
        if (row.database !== currentDb) {
          throw new BemiRevertUnsupportedError(row.id, `it was captured from database "${row.database}", but this EntityManager writes to "${currentDb}".`);
        }
        await this.store.run({ revertOf: row.id }, () => this.revertOne(row, exec, method));
      }
    });
  }

  private async revertOne(row: RawChangeRow, exec: (b: BuiltSql) => Promise<any[]>, method: string): Promise<void> {
    if (row.operation === 'TRUNCATE') throw new BemiRevertUnsupportedError(row.id, 'a TRUNCATE carries no row images to restore.');
    const target = await this.resolve(`${row.schema}.${row.table}`, method, true);
    if (target.keyColumns.length === 0) throw new BemiRevertUnsupportedError(row.id, `${target.label} has no primary key to find the row by.`);
    const live = new Map(target.columns.map((c) => [c.name, c]));
    const before = imageOf(row.before);
    const after = imageOf(row.after);
    const conflict = (reason: string) => new BemiRevertConflictError(row.id, target.label, row.primary_key, reason);
    const needKey = (image: Record<string, unknown>, side: string) => {
      const missing = target.keyColumns.filter((k) => !(k.name in image)).map((k) => k.name);
      if (missing.length) throw new BemiRevertUnsupportedError(row.id, `its ${side} image lacks the key column(s) ${missing.join(', ')}.`);
    };
    // Unchanged-TOAST markers stand for "same as before": never compared, never written.
    // Redacted values (rules) are not the column's value either: never compared, never written.
    const presentColumns = (image: Record<string, unknown>) =>
      Object.keys(image).filter((c) => live.has(c) && image[c] !== UNCHANGED_TOAST_MARKER && !isRedactedValue(image[c]));
    const refuseRedacted = (image: Record<string, unknown>, columns: string[]) => {
      const redacted = columns.filter((c) => isRedactedValue(image[c]));
      if (redacted.length) {
        throw new BemiRevertUnsupportedError(row.id, `${redacted.join(', ')} ${redacted.length > 1 ? 'were' : 'was'} recorded redacted (rules), so the old value is unknown.`);
      }
    };

    if (row.operation === 'DELETE') {
      needKey(before, 'before');
      const nonKey = target.columns.filter((c) => !c.generated && !target.keyColumns.some((k) => k.name === c.name));
      if (nonKey.length && !nonKey.some((c) => c.name in before)) {
        throw new BemiRevertUnsupportedError(row.id, `its before image holds only the key (the table was not REPLICA IDENTITY FULL when it was deleted), so the row cannot be restored.`);
      }
      const existing = await exec(lockAndCompareSql(target, JSON.stringify(before), []));
      if (existing.length) throw conflict('a row with this key exists again.');
      refuseRedacted(before, Object.keys(before).filter((c) => live.has(c) && !live.get(c)!.generated));
      const columns = presentColumns(before).filter((c) => !live.get(c)!.generated);
      const overriding = columns.some((c) => live.get(c)!.identityAlways);
      try {
        await exec(revertDeleteSql(target, JSON.stringify(before), columns, overriding));
      } catch (error) {
        if ((error as { code?: string }).code === '23505') throw conflict('a row with this key was inserted concurrently.');
        throw error;
      }
      return;
    }

    needKey(after, 'after');
    const compare = presentColumns(after);
    const current = await exec(lockAndCompareSql(target, JSON.stringify(after), compare));
    if (current.length === 0) throw conflict('the row no longer exists.');
    if (!current[0].same) throw conflict('the row changed since (optimistic check against the change\'s after image failed).');

    if (row.operation === 'CREATE') {
      await exec(revertCreateSql(target, JSON.stringify(after)));
      return;
    }
    // UPDATE: put back what it changed, nothing else.
    // A redacted column that the UPDATE changed cannot be put back (its old value was never stored).
    refuseRedacted(before, Object.keys(after).filter((c) => live.has(c) && isRedactedValue(after[c]) && JSON.stringify(before[c]) !== JSON.stringify(after[c])));
    const changed = compare.filter((c) => !live.get(c)!.generated && JSON.stringify(before[c]) !== JSON.stringify(after[c]));
    const unknown = changed.filter((c) => !(c in before));
    if (unknown.length) {
      throw new BemiRevertUnsupportedError(row.id, `its before image lacks ${unknown.join(', ')} (the table was not REPLICA IDENTITY FULL), so the old values are unknown.`);
    }
    if (changed.length) await exec(revertUpdateSql(target, JSON.stringify(before), JSON.stringify(after), changed));
  }

  // ---- internals --------------------------------------------------------------------------

  private get orm(): MikroORM {
    if (!this.maybeOrm) {
      throw new BemiHistoryError(
        'BemiHistory has no MikroORM instance: import MikroOrmModule.forRoot() in the application, or create one yourself with BemiHistory.create(orm).',
      );
    }
    return this.maybeOrm;
  }

  private get targets(): TargetResolver {
    void this.orm; // throws the explanatory error when there is no ORM
    return this.resolver!;
  }

  private async run<R = any>(built: BuiltSql, method: string, keyArgument?: string): Promise<R[]> {
    const em = this.orm.em as unknown as { execute(sql: string, params: unknown[]): Promise<R[]> };
    try {
      return await em.execute(built.sql, built.params);
    } catch (error) {
      const code = (error as { code?: string }).code;
      if (keyArgument && code && BAD_VALUE_CODES.has(code)) {
        throw new BemiHistoryArgumentError(method, keyArgument, `does not fit the key column's type (${(error as Error).message.split('\n')[0].replace(/^.* - /, '')}).`);
      }
      throw error;
    }
  }

  private async resolve(target: HistoryTarget, method: string, requireTable: boolean): Promise<ResolvedTarget> {
    if (target === undefined || target === null || (typeof target === 'string' && target.trim() === '')) {
      throw new BemiHistoryArgumentError(method, 'entity', `is required, got ${describe(target)}.`);
    }
    const resolved = await this.targets.resolve(target, method, (sql, params) => this.run({ sql, params }, method), { requireTable });
    // A table that is gone may still have a trail; a name with neither is most likely a typo.
    if (!resolved.exists && !resolved.meta) {
      const [known] = await this.run(trailHasTableSql(this.loc, resolved.schema, resolved.table), method);
      if (!known) {
        throw new BemiUnknownEntityError(method, String(target), `No MikroORM entity has that name, there is no table ${resolved.schema}.${resolved.table} and no change of one.`);
      }
    }
    return resolved;
  }

  /** Capture start check plus the table's TRUNCATEs around T. */
  private async preflight(target: LiveTable, instant: Instant, method: string, argument: string) {
    const [row] = await this.run<{ state_exists: boolean; truncate_before: string | null; truncate_after: string | null; settled: boolean | null; deleted_index: boolean }>(
      preflightSql(this.loc, target, instant.upper),
      method,
    );
    await this.checkCaptureStart(row.state_exists, instant, method, argument);
    // settled: T is at or after the table's latest change, so each key's latest change decides.
    return {
      truncateBefore: parsePosition(row.truncate_before),
      truncateAfter: parsePosition(row.truncate_after),
      settled: row.settled === true,
      deletedIndex: row.deleted_index === true,
    };
  }

  /** Once per instance: tableAt() works without the index, only slower on large trails. */
  private warnMissingDeletedIndex(): void {
    if (this.warnedDeletedIndex) return;
    this.warnedDeletedIndex = true;
    this.logger.warn(
      `tableAt() walks every key of the trail because ${this.loc.changes} has no index on the keys of deleted rows. ` +
        `Create it (as bemiChangesTableSql() now does): CREATE INDEX CONCURRENTLY _bemi_changes_deleted ON ${this.loc.changes} ("table", primary_key) WHERE operation = 'DELETE';`,
    );
  }

  private async checkCaptureStart(stateExists: boolean, instant: Instant, method: string, argument: string): Promise<void> {
    const start = await this.captureStarted(stateExists, method);
    if (start.value === null || instant.upperMicros < start.value) {
      throw new BemiBeforeCaptureError(method, argument, instant.upper, start.text);
    }
  }

  private async captureStarted(stateExists: boolean, method: string): Promise<{ value: bigint | null; text: string | null }> {
    if (!stateExists) return { value: null, text: null };
    const cached = this.captureStart;
    if (cached && cached.value !== null && Date.now() - cached.at < BemiHistory.CAPTURE_START_TTL_MS) return cached;
    const [row] = await this.run<{ started: string | null }>(captureStartSql(this.loc), method);
    const text = row?.started ?? null;
    const value = text === null ? null : parseInstant(text, method, 'captureStartedAt').upperMicros;
    this.captureStart = { value, text, at: Date.now() };
    return this.captureStart;
  }

  private async fetchChange(id: unknown, method: string): Promise<RawChangeRow> {
    if (typeof id !== 'string' || !/^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i.test(id)) {
      throw new BemiHistoryArgumentError(method, 'change', `must be a change, a BemiChange or a change id (uuid), got ${describe(id)}.`);
    }
    const [row] = await this.run<RawChangeRow>(changeByIdSql(this.loc, id), method);
    if (!row) throw new BemiChangeNotFoundError(id);
    return row;
  }

  /** Always re-reads the change: reverts must act on what is stored, not on a caller's copy. */
  private rowOf(change: ChangeRef, method: string): Promise<RawChangeRow> {
    const id = typeof change === 'string' ? change : (change as { id?: unknown } | null)?.id;
    return this.fetchChange(id, method);
  }

  private mapChanges(rows: RawChangeRow[], known?: ResolvedTarget): HistoryChange<any>[] {
    const platform = this.orm.em.getPlatform();
    const cache = new Map<string, MappingInfo | undefined>();
    if (known) cache.set(`${known.schema}\u0000${known.table}`, known);
    return rows.map((row) => {
      const key = `${row.schema}\u0000${row.table}`;
      if (!cache.has(key)) cache.set(key, this.mappingFor(row.schema, row.table));
      return toHistoryChange(row, cache.get(key), platform);
    });
  }

  private mappingFor(schema: string, table: string): MappingInfo | undefined {
    const meta = this.targets.metaForTable(schema, table);
    if (!meta) return undefined;
    const columnToProp = new Map<string, string>();
    for (const prop of meta.props) {
      if (prop.fieldNames?.length === 1 && prop.persist !== false) columnToProp.set(prop.fieldNames[0], prop.name);
    }
    return { meta, columnToProp };
  }

  private columnsOf(target: ResolvedTarget | undefined, names: unknown, method: string, argument: string): string[] {
    if (!Array.isArray(names) || names.some((n) => typeof n !== 'string' || n === '')) {
      throw new BemiHistoryArgumentError(method, argument, `must be an array of property names, got ${describe(names)}.`);
    }
    return names.map((name: string) => {
      if (!target) return name;
      const column = target.propToColumn.get(name) ?? (target.columns.some((c) => c.name === name) || !target.meta ? name : undefined);
      if (column === undefined) throw new BemiHistoryArgumentError(method, argument, `names "${name}", which is not a property of ${target.label}.`);
      return column;
    });
  }

  private whereOf(target: ResolvedTarget, where: unknown, method: string): Array<{ column: string; values: unknown[] }> {
    if (where === undefined) return [];
    if (!isPlainObject(where)) throw new BemiHistoryArgumentError(method, 'options.where', `must be an object of property: value, got ${describe(where)}.`);
    return Object.entries(where).map(([name, value]) => {
      const column = target.propToColumn.get(name) ?? (target.columns.some((c) => c.name === name) ? name : undefined);
      if (column === undefined) throw new BemiHistoryArgumentError(method, 'options.where', `names "${name}", which is not a property or column of ${target.label}.`);
      const values = (Array.isArray(value) ? value : [value]).map((v) => {
        if (v instanceof Date) return v.toISOString();
        if (v !== null && typeof v === 'object') {
          const pk = (v as { __helper?: { getPrimaryKey(): unknown } }).__helper?.getPrimaryKey();
          return pk !== undefined ? pk : JSON.stringify(v);
        }
        if (v === undefined) throw new BemiHistoryArgumentError(method, 'options.where', `has undefined for "${name}".`);
        return typeof v === 'bigint' ? v.toString() : v;
      });
      return { column, values };
    });
  }

  private toResults<T>(target: ResolvedTarget, rows: Record<string, unknown>[]): T[] {
    // Entities are built from their own columns only: the bookkeeping columns need no removal
    // there (a `delete` per row would also turn every row into a slow dictionary object).
    if (target.meta) return hydrateDetached(this.orm.em as unknown as EntityManager, target.meta, rows) as T[];
    for (const row of rows) {
      delete row._bemi_state;
      delete row._bemi_detail;
      delete row._bemi_key;
    }
    return rows as T[];
  }
}

function noImageError(method: string, target: ResolvedTarget, keys: string[], at: string): BemiHistoryUnavailableError {
  return new BemiHistoryUnavailableError(
    `BemiHistory.${method}(): record(s) ${keys.slice(0, 5).join(' | ')} of ${target.label} had no change at or before ${at}, and the first change after it has no before image ` +
      '(the table is not REPLICA IDENTITY FULL), so the state at that moment was never recorded. ' +
      'Set REPLICA IDENTITY FULL on the table (bemiMigrationSql({ replicaIdentityFull: true })) for complete images.',
  );
}

function toastError(method: string, target: ResolvedTarget, keys: string[], columns: string[]): BemiHistoryUnavailableError {
  return new BemiHistoryUnavailableError(
    `BemiHistory.${method}(): the trail of ${target.label} does not hold the value of ${[...new Set(columns)].join('; ')} for record(s) ${keys.slice(0, 5).join(' | ')}: ` +
      'an UPDATE left a large (TOASTed) value unchanged and the table is not REPLICA IDENTITY FULL, and no earlier change recorded it. ' +
      'Set REPLICA IDENTITY FULL on the table (bemiMigrationSql({ replicaIdentityFull: true })) for complete images.',
  );
}

type AtDecision = 'image' | 'live' | 'none' | 'noimage' | 'truncated';

/** The LEFT JOIN leaves the row's columns NULL when no row came back; a key column is never NULL in a row. */
function hasRowColumns(row: Record<string, unknown>, target: ResolvedTarget): boolean {
  return target.keyColumns.every((k) => row[k.name] !== null && row[k.name] !== undefined);
}

function parsePosition(text: string | null): TrailPosition | null {
  if (!text) return null;
  const m = /^\((\d+),(\d+)\)$/.exec(text);
  return m ? { commitPosition: m[1], seq: Number(m[2]) } : null;
}

function checkLimit(value: unknown, method: string, fallback: number, max = MAX_LIMIT, argument = 'limit'): number {
  if (value === undefined) return fallback;
  if (typeof value !== 'number' || !Number.isInteger(value) || value < 1 || value > max) {
    throw new BemiHistoryArgumentError(method, argument, `must be an integer from 1 to ${max}, got ${describe(value)}.`);
  }
  return value;
}

function isPlainObject(value: unknown): value is Record<string, any> {
  if (!value || typeof value !== 'object' || Array.isArray(value)) return false;
  const proto = Object.getPrototypeOf(value);
  return proto === Object.prototype || proto === null;
}

function isBemiChangeEntity(value: object): value is BemiChange {
  return 'commitPosition' in value && 'transactionId' in value && !('cursor' in value);
}

function entityToRaw(c: BemiChange): RawChangeRow {
  const committed = c.committedAt instanceof Date ? c.committedAt.toISOString() : String(c.committedAt);
  return {
    id: c.id,
    primary_key: c.primaryKey,
    before: c.before,
    after: c.after,
    context: c.context,
    database: c.database,
    schema: c.schema,
    table: c.table,
    operation: c.operation,
    commit_ts: committed,
    transaction_id: String(c.transactionId),
    position: String(c.position),
    commit_position: String(c.commitPosition),
    seq: c.seq,
  };
}
