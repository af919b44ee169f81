/**
 * Reading the trail as changes: pages of changes(), one change, one transaction, diff(). Also
 * how a change argument is re-read from the trail, which revert relies on.
 */
import { EntitySchema } from '@mikro-orm/core';
import type { BemiChange } from './bemi-change.entity';
import { BemiChangeNotFoundError, BemiHistoryArgumentError } from './history.errors';
import type { ChangeOperation, ChangesQuery, HistoryChange, HistoryDiff, HistoryTarget } from './history.interfaces';
import { checkLimit, isPlainObject } from './history-arguments';
import { decodeCursor, diffChange, toHistoryChange, type MappingInfo, type RawChangeRow } from './history-mapper';
import { changeByIdSql, changesSql, TIME_POSITION_INDEX, transactionSql } from './history-reader.sql';
import { keyValues, type ResolvedTarget } from './history-target';
import { describe, parseInstant } from './history-time';
import type { TrailAccess } from './trail-access';

const OPERATIONS: readonly ChangeOperation[] = ['CREATE', 'UPDATE', 'DELETE', 'TRUNCATE'];
const QUERY_KEYS = new Set(['primaryKey', 'from', 'to', 'operation', 'context', 'role', 'changedFields', 'limit', 'after', 'order']);
const DEFAULT_LIMIT = 1000;

/** What the methods taking "a change" accept: one returned by BemiHistory, a BemiChange, or its id. */
export type ChangeRef = HistoryChange<any> | BemiChange | string;

export class HistoryReader {
  /** Whether the trail has the time-position index; a missing one is looked for again after a while (a migration may add it). */
  private timeIndex?: { present: boolean; at: number };
  private static readonly MISSING_INDEX_RECHECK_MS = 30_000;

  constructor(private readonly trail: TrailAccess) {}

  /** changes(target?, query?) with the overloads of BemiHistory.changes() told apart here. */
  async changes(targetOrQuery?: HistoryTarget | ChangesQuery, maybeQuery?: ChangesQuery): Promise<HistoryChange<any>[]> {
    const M = 'changes';
    const isQuery = targetOrQuery === undefined || (isPlainObject(targetOrQuery) && !(targetOrQuery instanceof EntitySchema));
    const target = isQuery ? undefined : (targetOrQuery as HistoryTarget);
    const query = ((isQuery ? targetOrQuery : maybeQuery) ?? {}) as ChangesQuery;
    if (!isPlainObject(query)) throw new BemiHistoryArgumentError(M, 'query', `must be an object, got ${describe(query)}.`);
    for (const key of Object.keys(query)) {
      if (!QUERY_KEYS.has(key)) throw new BemiHistoryArgumentError(M, 'query', `has an unknown option "${key}"; known: ${[...QUERY_KEYS].join(', ')}.`);
    }
    const resolved = target === undefined ? undefined : await this.trail.resolve(target, M, false);
    if (!resolved) await this.trail.findTrailTables(M); // which columns the trail has (resolve() finds them too)
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
    const roles = query.role === undefined ? undefined : [query.role].flat();
    if (roles && (roles.length === 0 || roles.some((r) => typeof r !== 'string' || r.length === 0))) {
      throw new BemiHistoryArgumentError(M, 'role', `must be a role name or a non-empty array of them, got ${describe(query.role)}.`);
    }
    const changedColumns = query.changedFields === undefined ? undefined : columnsOf(resolved, query.changedFields, M, 'changedFields');
    const limit = checkLimit(query.limit, M, DEFAULT_LIMIT);
    const order = query.order ?? 'asc';
    if (order !== 'asc' && order !== 'desc') throw new BemiHistoryArgumentError(M, 'order', `must be "asc" or "desc", got ${describe(order)}.`);

    const ranged = (from !== undefined || to !== undefined) && query.primaryKey === undefined && query.context === undefined;
    const built = changesSql(this.trail.loc, {
      table: resolved && { schema: resolved.schema, table: resolved.table, periods: resolved.periods },
      keyText: query.primaryKey === undefined ? undefined : { live: resolved!, values: keyValues(resolved!, query.primaryKey, M) },
      fromLower: from?.lower,
      toUpper: to?.upper,
      operations,
      context: query.context === undefined ? undefined : JSON.stringify(query.context),
      roles,
      changedColumns,
      after: query.after === undefined ? undefined : decodeCursor(query.after, M),
      order,
      limit,
      // Without the index the bound's correction would read the whole trail: today's plain walk instead.
      timeBounds: ranged && (await this.hasTimeIndex(M)),
    });
    const rows = await this.trail.run<RawChangeRow>(built, M, 'primaryKey');
    return this.mapChanges(rows, resolved);
  }

  async change(id: string): Promise<HistoryChange> {
    return this.mapChanges([await this.fetchChange(id, 'change')])[0];
  }

  async transaction(change: ChangeRef): Promise<HistoryChange[]> {
    const row = await this.rowOf(change, 'transaction');
    return this.mapChanges(await this.transactionRows(row, 'transaction'));
  }

  diff(change: HistoryChange<any> | BemiChange): HistoryDiff {
    if (!change || typeof change !== 'object' || !('before' in change) || !('after' in change)) {
      throw new BemiHistoryArgumentError('diff', 'change', `must be a change returned by BemiHistory or a BemiChange entity, got ${describe(change)}.`);
    }
    if (isBemiChangeEntity(change)) {
      const mapping = this.mappingFor(change.schema, change.table);
      const mapped = toHistoryChange(entityToRaw(change), mapping, this.trail.orm.em.getPlatform());
      return diffChange(mapped);
    }
    return diffChange(change as HistoryChange);
  }

  /** Always re-reads the change: reverts must act on what is stored, not on a caller's copy. */
  rowOf(change: ChangeRef, method: string): Promise<RawChangeRow> {
    const id = typeof change === 'string' ? change : (change as { id?: unknown } | null)?.id;
    return this.fetchChange(id, method);
  }

  /** The stored rows of `row`'s transaction, in order. */
  async transactionRows(row: RawChangeRow, method: string): Promise<RawChangeRow[]> {
    await this.trail.findTrailTables(method);
    return this.trail.run<RawChangeRow>(transactionSql(this.trail.loc, row.commit_position, row.transaction_id), method);
  }

  private async hasTimeIndex(method: string): Promise<boolean> {
    const known = this.timeIndex;
    if (known && (known.present || Date.now() - known.at < HistoryReader.MISSING_INDEX_RECHECK_MS)) return known.present;
    // Valid only: an index being built CONCURRENTLY (or whose build failed) is not used by plans.
    const [row] = await this.trail.run<{ present: boolean }>(
      {
        sql: `SELECT EXISTS (SELECT 1 FROM pg_index i JOIN pg_class x ON x.oid = i.indexrelid JOIN pg_namespace n ON n.oid = x.relnamespace
          WHERE x.relname = ? AND n.nspname = ? AND i.indisvalid) AS present`,
        params: [TIME_POSITION_INDEX, this.trail.loc.captureStateName.schema],
      },
      method,
    );
    this.timeIndex = { present: row?.present === true, at: Date.now() };
    return this.timeIndex.present;
  }

  private async fetchChange(id: unknown, method: string): Promise<RawChangeRow> {
    if (typeof id !== 'string' || !/^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i.test(id)) {
      throw new BemiHistoryArgumentError(method, 'change', `must be a change, a BemiChange or a change id (uuid), got ${describe(id)}.`);
    }
    await this.trail.findTrailTables(method);
    const [row] = await this.trail.run<RawChangeRow>(changeByIdSql(this.trail.loc, id), method);
    if (!row) throw new BemiChangeNotFoundError(id);
    return row;
  }

  private mapChanges(rows: RawChangeRow[], known?: ResolvedTarget): HistoryChange<any>[] {
    const platform = this.trail.orm.em.getPlatform();
    const cache = new Map<string, MappingInfo | undefined>();
    if (known) cache.set(`${known.schema}\u0000${known.table}`, known);
    return rows.map((row) => {
      const key = `${row.schema}\u0000${row.table}`;
      if (!cache.has(key)) cache.set(key, this.mappingFor(row.schema, row.table));
      return toHistoryChange(row, cache.get(key), platform);
    });
  }

  private mappingFor(schema: string, table: string): MappingInfo | undefined {
    const meta = this.trail.targets.metaForTable(schema, table);
    if (!meta) return undefined;
    const columnToProp = new Map<string, string>();
    for (const prop of meta.props) {
      if (prop.fieldNames?.length === 1 && prop.persist !== false) columnToProp.set(prop.fieldNames[0], prop.name);
    }
    return { meta, columnToProp };
  }
}

/** changedFields: property names → the columns the trail's images are keyed by. */
function columnsOf(target: ResolvedTarget | undefined, names: unknown, method: string, argument: string): string[] {
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

function isBemiChangeEntity(value: object): value is BemiChange {
  return 'commitPosition' in value && 'transactionId' in value && !('cursor' in value);
}

function entityToRaw(c: BemiChange): RawChangeRow {
  const committed = c.committedAt instanceof Date ? c.committedAt.toISOString() : String(c.committedAt);
  return {
    id: c.id,
    primary_key: c.primaryKey,
    previous_key: c.previousKey ?? null,
    before: c.before,
    after: c.after,
    context: c.context,
    role: c.role ?? null,
    session_role: c.sessionRole ?? null,
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
