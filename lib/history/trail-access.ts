/**
 * What the reader, time travel and revert all stand on: where the trail is, the ORM (or the
 * error saying how to provide one), statements run with bad key values reported as argument
 * errors, and targets resolved with a typo check. One instance per BemiHistory, shared by its parts.
 */
import type { MikroORM } from '@mikro-orm/core';
import type { TrailLocation } from '../trail/trail-location';
import { BemiHistoryArgumentError, BemiHistoryError, BemiUnknownEntityError } from './history.errors';
import type { HistoryTarget } from './history.interfaces';
import { trailHasTableSql } from './history-target.sql';
import { TargetResolver, type ResolvedTarget } from './history-target';
import { describe } from './history-time';
import { qualified, type BuiltSql } from './sql-params';
import type { TrailTables } from './trail.sql';
import { RETENTION_HORIZON_TABLE, SCHEMA_LOG_TABLE } from '../trail/changes-table';
import { quoteIdent } from '../shared/sql-quote';
import { tablePeriods, type SchemaLogRow, type TablePeriod } from './table-identity';
import { renamedTableSql, schemaLogRowsSql, trailTablesExistSql } from './table-identity.sql';

/** PostgreSQL errors raised when a key value cannot be cast to the key column's type. */
export const BAD_VALUE_CODES = new Set(['22P02', '22003', '22007', '22008', '22001', '22023']);

export class TrailAccess {
  readonly loc: TrailTables;
  private readonly resolver?: TargetResolver;
  private readonly periodCache = new Map<string, { at: number; periods: TablePeriod[] | undefined }>();
  private hasSchemaLog?: boolean;
  private checkedTrailTablesAt = 0;
  /** The trail's tables as to_regclass() text (a parameter, so not MikroORM-escaped like `loc`). */
  private readonly regclassNames: { log: string; horizons: string; changes: string };
  private readonly horizonsQualified: string;
  private static readonly PERIODS_TTL_MS = 30_000;
  private static readonly MISSING_TABLE_RECHECK_MS = 5_000;

  constructor(
    // Optional so that an app without a default MikroORM still boots; methods then say what to do.
    readonly maybeOrm: MikroORM | undefined,
    /** The configured trail, as resolved at startup. */
    trail: TrailLocation,
  ) {
    const { schema, table, captureStateTable: stateTable } = trail;
    for (const [name, value] of Object.entries({ schema, table, captureStateTable: stateTable })) {
      if (typeof value !== 'string' || value === '') throw new BemiHistoryArgumentError('constructor', name, `must be a non-empty string, got ${describe(value)}.`);
    }
    this.loc = {
      changes: qualified(schema, table),
      captureState: qualified(schema, stateTable),
      captureStateName: { schema, table: stateTable },
      database: trail.database ?? null,
      schemaLog: qualified(schema, SCHEMA_LOG_TABLE),
    };
    const regclass = (name: string) => `${quoteIdent(schema)}.${quoteIdent(name)}`;
    this.regclassNames = { log: regclass(SCHEMA_LOG_TABLE), horizons: regclass(RETENTION_HORIZON_TABLE), changes: regclass(table) };
    this.horizonsQualified = qualified(schema, RETENTION_HORIZON_TABLE);
    this.resolver = maybeOrm ? new TargetResolver(maybeOrm) : undefined;
  }

  get orm(): MikroORM {
    if (!this.maybeOrm) {
      throw new BemiHistoryError(
        'BemiHistory has no MikroORM instance: import MikroOrmModule.forRoot() in the application, or create one yourself with BemiHistory.create(orm).',
      );
    }
    return this.maybeOrm;
  }

  get targets(): TargetResolver {
    void this.orm; // throws the explanatory error when there is no ORM
    return this.resolver!;
  }

  async run<R = any>(built: BuiltSql, method: string, keyArgument?: string): Promise<R[]> {
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

  /**
   * The table's periods from the schema log (see table-identity.ts), cached like the catalog: they
   * change only with DDL. Undefined without a schema log or when it adds nothing. After
   * findTrailTables().
   */
  private async periods(schema: string, table: string, method: string): Promise<TablePeriod[] | undefined> {
    const key = `${schema}\u0000${table}`;
    const cached = this.periodCache.get(key);
    if (cached && Date.now() - cached.at < TrailAccess.PERIODS_TTL_MS) return cached.periods;
    const periods = this.hasSchemaLog ? tablePeriods(await this.run<SchemaLogRow>(schemaLogRowsSql(this.loc, schema, table), method)) : undefined;
    this.periodCache.set(key, { at: Date.now(), periods });
    return periods;
  }

  /**
   * Whether the trail has its schema log and horizon tables and `changes` its previous_key, role and context_seq columns
   * (trails made by older versions may not); what is missing is looked for again after a while, as
   * retention or capture may create it.
   */
  async findTrailTables(method: string): Promise<void> {
    const complete = this.hasSchemaLog && this.loc.horizons !== undefined && this.loc.previousKeys === true && this.loc.roles === true && this.loc.contextSeq === true;
    if (complete || (this.hasSchemaLog !== undefined && Date.now() - this.checkedTrailTablesAt < TrailAccess.MISSING_TABLE_RECHECK_MS)) return;
    const [row] = await this.run<{ log: boolean; horizons: boolean; previous_keys: boolean; roles: boolean; context_seq: boolean }>(trailTablesExistSql(this.regclassNames), method);
    this.hasSchemaLog = row.log;
    if (row.horizons) this.loc.horizons = this.horizonsQualified;
    this.loc.previousKeys = row.previous_keys;
    this.loc.roles = row.roles;
    this.loc.contextSeq = row.context_seq;
    this.checkedTrailTablesAt = Date.now();
  }

  async resolve(target: HistoryTarget, method: string, requireTable: boolean): Promise<ResolvedTarget> {
    if (target === undefined || target === null || (typeof target === 'string' && target.trim() === '')) {
      throw new BemiHistoryArgumentError(method, 'entity', `is required, got ${describe(target)}.`);
    }
    const execute = (sql: string, params: unknown[]) => this.run({ sql, params }, method);
    await this.findTrailTables(method);
    let resolved = await this.targets.resolve(target, method, execute, { requireTable: false });
    // A former name of a table that still exists (renamed since) stands for it.
    if (!resolved.exists && typeof target === 'string' && this.hasSchemaLog) {
      const [renamed] = await this.run<{ schema: string; table: string }>(renamedTableSql(this.loc, resolved.schema, resolved.table), method);
      if (renamed) resolved = await this.targets.resolve(`${renamed.schema}.${renamed.table}`, method, execute, { requireTable });
    }
    if (!resolved.exists && requireTable) resolved = await this.targets.resolve(target, method, execute, { requireTable });
    // A table that is gone may still have a trail; a name with neither is most likely a typo.
    if (!resolved.exists && !resolved.meta) {
      const [known] = await this.run(trailHasTableSql(this.loc, resolved.schema, resolved.table), method);
      if (!known) {
        throw new BemiUnknownEntityError(method, String(target), `No MikroORM entity has that name, there is no table ${resolved.schema}.${resolved.table} and no change of one.`);
      }
    }
    if (resolved.exists) resolved.periods = await this.periods(resolved.schema, resolved.table, method);
    return resolved;
  }
}
