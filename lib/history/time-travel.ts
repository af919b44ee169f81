/**
 * Time travel: at() and tableAt() turn the trail into records or a whole table as of a moment,
 * refusing (typed errors) where the trail cannot know the answer. What "the state at T" means is
 * in docs/history.md; the SQL that applies it is in time-travel.sql.ts and table-at.sql.ts.
 */
import { Logger } from '@nestjs/common';
import type { EntityManager } from '@mikro-orm/core';
import { BemiBeforeCaptureError, BemiBeforeHorizonError, BemiHistoryArgumentError, BemiHistoryUnavailableError } from './history.errors';
import type { HistoryInstant, HistoryTarget, TableAtOptions } from './history.interfaces';
import { checkLimit, isPlainObject } from './history-arguments';
import { hydrateDetached } from './history-mapper';
import { keyValues, type ResolvedTarget } from './history-target';
import { describe, parseInstant, type Instant } from './history-time';
import type { PreparedReader } from './prepared-reader';
import type { BuiltSql } from './sql-params';
import { preflightSql, tableAtSql } from './table-at.sql';
import { captureStartSql, keyCheckSql, recordAtSql } from './time-travel.sql';
import { BAD_VALUE_CODES, type TrailAccess } from './trail-access';
import type { TrailPosition } from './trail.sql';

type AtDecision = 'image' | 'live' | 'none' | 'noimage' | 'truncated';

export class TimeTravel {
  private captureStart?: { value: bigint | null; text: string | null; at: number };
  private readonly logger = new Logger('BemiHistory');
  private warnedDeletedIndex = false;
  private static readonly CAPTURE_START_TTL_MS = 10_000;

  /** `prepared` exists exactly when there is an ORM (at() resolves its target, which checks that, first). */
  constructor(
    private readonly trail: TrailAccess,
    private readonly prepared: PreparedReader | undefined,
  ) {}

  async at<T extends object>(target: HistoryTarget<T>, primaryKey: unknown, at: HistoryInstant): Promise<T | null> {
    const M = 'at';
    const instant = parseInstant(at, M, 'at');
    const resolved = await this.trail.resolve(target, M, true);
    checkPredecessor(resolved, instant, M);
    const key = keyValues(resolved, primaryKey, M);
    // One statement: the rule is applied by SQL probes, the image comes back as a typed row.
    const [row] = await this.runAt(recordAtSql(this.trail.loc, resolved, key, instant.upper), resolved, key);
    await this.checkCaptureStart(row._bemi_state_exists as boolean, instant, M, 'at');
    checkHorizon(row._bemi_horizon as string | null, instant, M, 'at', resolved);
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
      return await this.prepared!.query(built, () => this.trail.run<Record<string, unknown>>(built, 'at'));
    } catch (error) {
      const code = (error as { code?: string }).code;
      if (code && BAD_VALUE_CODES.has(code)) await this.trail.run(keyCheckSql(target, key), 'at', 'primaryKey');
      throw error;
    }
  }

  async tableAt<T extends object>(target: HistoryTarget<T>, at: HistoryInstant, options: TableAtOptions<T>): Promise<T[]> {
    const M = 'tableAt';
    const instant = parseInstant(at, M, 'at');
    if (!isPlainObject(options)) throw new BemiHistoryArgumentError(M, 'options', `must be an object, got ${describe(options)}.`);
    const resolved = await this.trail.resolve(target, M, true);
    checkPredecessor(resolved, instant, M);
    if (resolved.keyColumns.length === 0) {
      throw new BemiHistoryArgumentError(M, 'entity', `${resolved.label} has no primary key, so its rows cannot be told apart in the trail.`);
    }
    const limit = options.limit === undefined ? null : checkLimit(options.limit, M, 0, Number.MAX_SAFE_INTEGER, 'options.limit');
    const where = whereOf(resolved, options.where, M);
    const { truncateBefore, truncateAfter, settled, deletedIndex, keyChanges } = await this.preflight(resolved, instant, M, 'at');
    if (truncateAfter && !truncateBefore) {
      throw new BemiHistoryUnavailableError(
        `BemiHistory.tableAt(): ${resolved.label} was truncated after ${instant.upper}; rows that existed then and had not changed before the TRUNCATE were not recorded, so the table at that moment cannot be rebuilt. at() still answers for records that changed in between.`,
      );
    }
    // The strategies differ only in speed (see TableAtStrategy); 'live' needs the deleted-keys
    // index and no TRUNCATE after T (rows a TRUNCATE erased are neither live nor deleted).
    // With periods (a renamed or re-created table) or key changes the keys come from every period
    // and both trails at once, and 'latest' settles nothing ahead (see keysSql).
    const strategy = deletedIndex && !truncateAfter ? 'live' : settled && !resolved.periods && !keyChanges ? 'latest' : 'keys';
    if (!deletedIndex) this.warnMissingDeletedIndex();
    const rows = await this.trail.run<Record<string, unknown>>(
      tableAtSql(this.trail.loc, { ...resolved, keyChanges }, instant.upper, truncateBefore, truncateAfter, where, limit, strategy),
      M,
    );
    const unfilled = rows.filter((r) => r._bemi_state === 'toast');
    if (unfilled.length) throw toastError(M, resolved, unfilled.map((r) => String(r._bemi_key)), unfilled.map((r) => String(r._bemi_detail)));
    const imageless = rows.filter((r) => r._bemi_state === 'noimage');
    if (imageless.length) throw noImageError(M, resolved, imageless.map((r) => String(r._bemi_key)), instant.upper);
    return this.toResults<T>(resolved, rows);
  }

  /** Capture start check plus the table's TRUNCATEs around T. */
  private async preflight(target: ResolvedTarget, instant: Instant, method: string, argument: string) {
    const [row] = await this.trail.run<{
      state_exists: boolean;
      horizon: string | null;
      truncate_before: string | null;
      truncate_after: string | null;
      settled: boolean | null;
      deleted_index: boolean;
      key_changes: boolean;
    }>(preflightSql(this.trail.loc, target, instant.upper), method);
    await this.checkCaptureStart(row.state_exists, instant, method, argument);
    checkHorizon(row.horizon, instant, method, argument, target);
    // settled: T is at or after the table's latest change, so each key's latest change decides.
    return {
      truncateBefore: parsePosition(row.truncate_before),
      truncateAfter: parsePosition(row.truncate_after),
      settled: row.settled === true,
      deletedIndex: row.deleted_index === true,
      keyChanges: row.key_changes === true,
    };
  }

  /** Once per instance: tableAt() works without the index, only slower on large trails. */
  private warnMissingDeletedIndex(): void {
    if (this.warnedDeletedIndex) return;
    this.warnedDeletedIndex = true;
    this.logger.warn(
      `tableAt() walks every key of the trail because ${this.trail.loc.changes} has no index on the keys of deleted rows. ` +
        `Create it (as bemiChangesTableSql() now does): CREATE INDEX CONCURRENTLY _bemi_changes_deleted ON ${this.trail.loc.changes} ("table", primary_key) WHERE operation = 'DELETE';`,
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
    if (cached && cached.value !== null && Date.now() - cached.at < TimeTravel.CAPTURE_START_TTL_MS) return cached;
    const [row] = await this.trail.run<{ started: string | null }>(captureStartSql(this.trail.loc), method);
    const text = row?.started ?? null;
    const value = text === null ? null : parseInstant(text, method, 'captureStartedAt').upperMicros;
    this.captureStart = { value, text, at: Date.now() };
    return this.captureStart;
  }

  private toResults<T>(target: ResolvedTarget, rows: Record<string, unknown>[]): T[] {
    // Entities are built from their own columns only: the bookkeeping columns need no removal
    // there (a `delete` per row would also turn every row into a slow dictionary object).
    if (target.meta) return hydrateDetached(this.trail.orm.em as unknown as EntityManager, target.meta, rows) as T[];
    for (const row of rows) {
      delete row._bemi_state;
      delete row._bemi_detail;
      delete row._bemi_key;
    }
    return rows as T[];
  }
}

/** tableAt()'s `where`: property (or column) names → columns, values → what the SQL compares as text. */
function whereOf(target: ResolvedTarget, where: unknown, method: string): Array<{ column: string; values: unknown[] }> {
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

/**
 * The live table was created where another table of its name had been dropped: a moment before
 * that drop belongs to the other table, whose rows are not this table's (its changes are still
 * listed by changes() under the name).
 */
function checkPredecessor(target: ResolvedTarget, instant: Instant, method: string): void {
  const created = target.periods?.[0]?.created;
  if (created && instant.upperMicros < parseInstant(created.predecessorDroppedAt, method, 'at').upperMicros) {
    throw new BemiHistoryUnavailableError(
      `BemiHistory.${method}(): ${target.label} was created at ${created.at}; at ${instant.upper} its name belonged to another table, dropped at ${created.predecessorDroppedAt}, ` +
        `whose rows are not this table's. That table's changes are still listed by changes('${target.schema}.${target.table}', { to: '${created.predecessorDroppedAt}' }).`,
    );
  }
}

/** Retention deleted changes of the table committed up to `horizon`: a moment before it cannot be answered. */
function checkHorizon(horizon: string | null, instant: Instant, method: string, argument: string, target: ResolvedTarget): void {
  if (horizon !== null && instant.upperMicros < parseInstant(horizon, method, 'horizon').upperMicros) {
    throw new BemiBeforeHorizonError(method, argument, instant.upper, horizon, target.label);
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

/** The LEFT JOIN leaves the row's columns NULL when no row came back; a key column is never NULL in a row. */
function hasRowColumns(row: Record<string, unknown>, target: ResolvedTarget): boolean {
  return target.keyColumns.every((k) => row[k.name] !== null && row[k.name] !== undefined);
}

function parsePosition(text: string | null): TrailPosition | null {
  if (!text) return null;
  const m = /^\((\d+),(\d+)\)$/.exec(text);
  return m ? { commitPosition: m[1], seq: Number(m[2]) } : null;
}
