import { redactionHmac } from './redaction-hmac';
import { REDACTED_OLD_VALUE, REDACTED_VALUE } from './rules.constants';
import type { ColumnTreatment, CompiledRules } from './rules.interfaces';
import { ruleFor } from './rules-compiler';

/**
 * A table's rule resolved against its actual columns, once per relation message: the capture
 * worker asks it per value, so the hot path is one Map lookup.
 */
export class RelationRules {
  private constructor(
    /** Treatment per column; columns not in the map are recorded as they are. */
    private readonly treatments: ReadonlyMap<string, ColumnTreatment>,
    /** The relation's columns, in order (compared by `onlyIgnoredChanged`). */
    private readonly columns: readonly string[],
    private readonly hmacKey: string | undefined,
    private readonly skipIgnoredOnly: boolean,
  ) {}

  /**
   * The rules of one table, or undefined when nothing applies to it (the common case) or the
   * whole table is ignored (see {@link isIgnoredTable}).
   */
  static resolve(rules: CompiledRules | undefined, schema: string, table: string, columns: readonly string[], primaryKey: readonly string[]): RelationRules | undefined {
    const rule = ruleFor(rules, schema, table);
    if (!rule || rule.ignoreTable) return undefined;
    const treatments = new Map<string, ColumnTreatment>();
    for (const column of columns) {
      if (primaryKey.includes(column)) continue; // the key identifies the record: always recorded
      const explicit = rule.columns.get(column);
      if (rule.only && !rule.only.has(column)) treatments.set(column, 'ignore');
      else if (explicit) treatments.set(column, explicit);
    }
    if (treatments.size === 0 && !rules!.skipIgnoredOnlyUpdates) return undefined;
    return new RelationRules(treatments, columns, rules!.hmacKey, rules!.skipIgnoredOnlyUpdates);
  }

  static isIgnoredTable(rules: CompiledRules | undefined, schema: string, table: string): boolean {
    return ruleFor(rules, schema, table)?.ignoreTable === true;
  }

  treatment(column: string): ColumnTreatment | undefined {
    return this.treatments.get(column);
  }

  /**
   * With `skipIgnoredOnlyUpdates`: true when an UPDATE with a full old tuple differs only in
   * ignored columns. Values are compared as pgoutput's text; a value the WAL did not resend
   * (unchanged TOAST) is unchanged by definition.
   */
  onlyIgnoredChanged(oldTuple: Record<string, unknown>, newTuple: Record<string, unknown>): boolean {
    if (!this.skipIgnoredOnly) return false;
    let ignoredChanged = false;
    for (const column of this.columns) {
      const after = newTuple[column];
      if (after === undefined) continue;
      if (oldTuple[column] === after) continue;
      if (this.treatments.get(column) !== 'ignore') return false;
      ignoredChanged = true;
    }
    // An UPDATE that changed nothing at all (SET x = x) is not "only ignored columns": keep it.
    return ignoredChanged;
  }

  /**
   * JSON text stored for a redacted value. NULL stays null (that a value was cleared is kept);
   * `changedFrom`: the value of the same column in the other tuple of an UPDATE, to mark a masked
   * old value that differs from the new one.
   */
  redactedJson(treatment: 'mask' | 'hmac', text: string | null, side: 'before' | 'after', other?: unknown): string {
    if (text === null) return 'null';
    if (treatment === 'hmac') return JSON.stringify(redactionHmac(this.hmacKey!, text));
    const changed = side === 'before' && other !== undefined && other !== text;
    return JSON.stringify(changed ? REDACTED_OLD_VALUE : REDACTED_VALUE);
  }
}
