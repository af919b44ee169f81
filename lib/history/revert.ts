/**
 * Reverting changes: the inverse of a stored change written through the application's
 * EntityManager (so the revert is captured and audited like any write), after an optimistic
 * check that the row is still what the change left behind.
 */
import type { EntityManager } from '@mikro-orm/core';
import type { BemiContextStore } from '../context/bemi-context.store';
import { isRedactedValue } from '../rules/rules.constants';
import { UNCHANGED_TOAST_MARKER } from '../trail/json-values';
import { BemiHistoryArgumentError, BemiRevertConflictError, BemiRevertUnsupportedError } from './history.errors';
import type { RevertOptions } from './history.interfaces';
import { imageOf, type RawChangeRow } from './history-mapper';
import type { ChangeRef, HistoryReader } from './history-reader';
import { describe } from './history-time';
import { lockAndCompareSql, revertCreateSql, revertDeleteSql, revertUpdateSql } from './revert.sql';
import type { BuiltSql } from './sql-params';
import type { TrailAccess } from './trail-access';

export class Reverter {
  constructor(
    private readonly trail: TrailAccess,
    private readonly reader: HistoryReader,
    private readonly store: BemiContextStore,
  ) {}

  async revert(change: ChangeRef, options: RevertOptions): Promise<void> {
    const row = await this.reader.rowOf(change, 'revert');
    await this.revertRows([row], options, 'revert');
  }

  async revertTransaction(change: ChangeRef, options: RevertOptions): Promise<void> {
    const row = await this.reader.rowOf(change, 'revertTransaction');
    const rows = await this.reader.transactionRows(row, 'revertTransaction');
    await this.revertRows(rows.reverse(), options, 'revertTransaction');
  }

  private async revertRows(rows: RawChangeRow[], options: RevertOptions, method: string): Promise<void> {
    const em = (options.em ?? this.trail.orm.em) as EntityManager & { execute?: (sql: string, params: unknown[]) => Promise<any[]> };
    if (typeof em?.transactional !== 'function') throw new BemiHistoryArgumentError(method, 'options.em', `must be a MikroORM EntityManager, got ${describe(em)}.`);
    const currentDb = this.trail.loc.database ?? (await this.trail.run<{ db: string }>({ sql: 'SELECT current_database() AS db', params: [] }, method))[0].db;
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
    const target = await this.trail.resolve(`${row.schema}.${row.table}`, method, true);
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
}
