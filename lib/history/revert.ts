/**
 * Reverting changes: the inverse of a stored change written through the application's
 * EntityManager (so the revert is captured and audited like any write), after an optimistic
 * check that the row is still what the change left behind.
 */
import type { EntityManager } from '@mikro-orm/core';
import type { BemiContextStore } from '../context/bemi-context.store';
import { redactionHmac } from '../rules/redaction-hmac';
import { HMAC_PREFIX, isRedactedValue } from '../rules/rules.constants';
import { VALUE_FORMAT_SETTINGS } from '../shared/value-formats';
import { UNCHANGED_TOAST_MARKER } from '../trail/json-values';
import { BemiHistoryArgumentError, BemiRevertConflictError, BemiRevertOrderError, BemiRevertUncheckableError, BemiRevertUnsupportedError } from './history.errors';
import type { RevertOptions } from './history.interfaces';
import { imageOf, type RawChangeRow } from './history-mapper';
import type { ChangeRef, HistoryReader } from './history-reader';
import { describe } from './history-time';
import {
  deferConstraintsSql,
  foreignKeysSql,
  liveTextSql,
  lockAndCompareSql,
  readSettingsSql,
  revertCreateSql,
  revertDeleteSql,
  revertUpdateSql,
  setSettingsSql,
  type ForeignKey,
} from './revert.sql';
import type { BuiltSql } from './sql-params';
import type { LiveTable } from './trail.sql';
import type { TrailAccess } from './trail-access';

export class Reverter {
  constructor(
    private readonly trail: TrailAccess,
    private readonly reader: HistoryReader,
    private readonly store: BemiContextStore,
    /** The capture's `rules.hmacKey`: lets the optimistic check compare HMAC-redacted columns. */
    private readonly hmacKey?: string,
  ) {}

  async revert(change: ChangeRef, options: RevertOptions): Promise<void> {
    const row = await this.reader.rowOf(change, 'revert');
    await this.revertRows([row], options, 'revert');
  }

  async revertTransaction(change: ChangeRef, options: RevertOptions): Promise<void> {
    const row = await this.reader.rowOf(change, 'revertTransaction');
    const rows = await this.reader.transactionRows(row, 'revertTransaction');
    await this.revertRows(rows.reverse(), options, 'revertTransaction', row.id);
  }

  /** `rows` newest first; with `changeId` (a transaction) they are reordered so foreign keys hold. */
  private async revertRows(rows: RawChangeRow[], options: RevertOptions, method: string, changeId?: string): Promise<void> {
    const em = (options.em ?? this.trail.orm.em) as EntityManager & { execute?: (sql: string, params: unknown[]) => Promise<any[]> };
    if (typeof em?.transactional !== 'function') throw new BemiHistoryArgumentError(method, 'options.em', `must be a MikroORM EntityManager, got ${describe(em)}.`);
    const currentDb = this.trail.loc.database ?? (await this.trail.run<{ db: string }>({ sql: 'SELECT current_database() AS db', params: [] }, method))[0].db;
    await em.transactional(async (tem) => {
      const exec = (built: BuiltSql) => (tem as unknown as { execute(sql: string, params: unknown[]): Promise<any[]> }).execute(built.sql, built.params);
      let ordered = rows;
      if (changeId !== undefined && rows.length > 1) {
        const tables = [...new Map(rows.map((r) => [`${r.schema}.${r.table}`, { schema: r.schema, table: r.table }])).values()];
        const keys = (await exec(foreignKeysSql(tables))) as ForeignKey[];
        const plan = orderInverses(rows, keys, changeId);
        if (plan.defer.length) await exec(deferConstraintsSql(plan.defer.map((k) => k.name)));
        ordered = plan.rows;
      }
      for (const row of ordered) {
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
    // What SQL reads the images as (jsonb_populate_record): without stand-ins, which need not fit the column's type.
    const beforeJson = JSON.stringify(withoutStandIns(before));
    const afterJson = JSON.stringify(withoutStandIns(after));
    const conflict = (reason: string) => new BemiRevertConflictError(row.id, target.label, row.primary_key, reason);
    const needKey = (image: Record<string, unknown>, side: string) => {
      const missing = target.keyColumns.filter((k) => !(k.name in image)).map((k) => k.name);
      if (missing.length) throw new BemiRevertUnsupportedError(row.id, `its ${side} image lacks the key column(s) ${missing.join(', ')}.`);
    };
    // Unchanged-TOAST markers stand for "same as before": never compared, never written.
    // Redacted values (rules) are not the column's value either: never written, and not compared
    // as text (HMACs are checked apart, below).
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
      const existing = await exec(lockAndCompareSql(target, beforeJson, []));
      if (existing.length) throw conflict('a row with this key exists again.');
      refuseRedacted(before, Object.keys(before).filter((c) => live.has(c) && !live.get(c)!.generated));
      const columns = presentColumns(before).filter((c) => !live.get(c)!.generated);
      const overriding = columns.some((c) => live.get(c)!.identityAlways);
      try {
        await exec(revertDeleteSql(target, beforeJson, columns, overriding));
      } catch (error) {
        if ((error as { code?: string }).code === '23505') throw conflict('a row with this key was inserted concurrently.');
        throw error;
      }
      return;
    }

    needKey(after, 'after');
    // UPDATE: a redacted column that it changed cannot be put back (its old value was never stored).
    if (row.operation === 'UPDATE') {
      refuseRedacted(before, Object.keys(after).filter((c) => live.has(c) && isRedactedValue(after[c]) && JSON.stringify(before[c]) !== JSON.stringify(after[c])));
    }
    // Redacted columns take part in the check too: an HMAC is recomputed from the live value; a
    // mask says nothing about the value, so the check cannot be made and the revert is refused.
    const redacted = target.columns.map((c) => c.name).filter((c) => isRedactedValue(after[c]));
    const hashed = redacted.filter((c) => (after[c] as string).startsWith(HMAC_PREFIX));
    const masked = redacted.filter((c) => !hashed.includes(c));
    if (masked.length) throw new BemiRevertUncheckableError(row.id, target.label, masked, false);
    if (hashed.length && !this.hmacKey) throw new BemiRevertUncheckableError(row.id, target.label, hashed, true);
    const compare = presentColumns(after);
    const current = await exec(lockAndCompareSql(target, afterJson, compare));
    if (current.length === 0) throw conflict('the row no longer exists.');
    if (!current[0].same) throw conflict('the row changed since (optimistic check against the change\'s after image failed).');
    if (hashed.length) {
      const texts = await liveTexts(exec, target, afterJson, hashed);
      const differ = hashed.filter((c, i) => (texts[i] === null ? null : redactionHmac(this.hmacKey!, texts[i]!)) !== after[c]);
      if (differ.length) throw conflict(`the row changed since (the live value of ${differ.join(', ')} no longer has the HMAC the change recorded).`);
    }

    if (row.operation === 'CREATE') {
      await exec(revertCreateSql(target, afterJson));
      return;
    }
    // UPDATE: put back what it changed, nothing else.
    const changed = compare.filter((c) => !live.get(c)!.generated && JSON.stringify(before[c]) !== JSON.stringify(after[c]));
    const unknown = changed.filter((c) => !(c in before));
    if (unknown.length) {
      throw new BemiRevertUnsupportedError(row.id, `its before image lacks ${unknown.join(', ')} (the table was not REPLICA IDENTITY FULL), so the old values are unknown.`);
    }
    if (changed.length) await exec(revertUpdateSql(target, beforeJson, afterJson, changed));
  }
}

/** An image without the values that stand for others (unchanged-TOAST markers, masks, HMACs). */
function withoutStandIns(image: Record<string, unknown>): Record<string, unknown> {
  return Object.fromEntries(Object.entries(image).filter(([, v]) => v !== UNCHANGED_TOAST_MARKER && !isRedactedValue(v)));
}

/**
 * The live row's `columns` printed as the capture's walsender prints them: its value formats are
 * set for this read only (SET LOCAL), then the caller's settings are put back.
 */
async function liveTexts(exec: (b: BuiltSql) => Promise<any[]>, target: LiveTable, imageJson: string, columns: string[]): Promise<Array<string | null>> {
  const saved = (await exec(readSettingsSql(VALUE_FORMAT_SETTINGS.map(([name]) => name)))) as Array<{ name: string; value: string }>;
  await exec(setSettingsSql(VALUE_FORMAT_SETTINGS));
  try {
    const [row] = await exec(liveTextSql(target, imageJson, columns));
    return columns.map((_c, i) => (row?.[`c${i}`] ?? null) as string | null);
  } finally {
    await exec(setSettingsSql(saved.map((s) => [s.name, s.value] as const)));
  }
}

type Inverse = 'insert' | 'delete' | 'update' | 'none';

/** What undoing a change does to its row: a DELETE is undone by an insert, a CREATE by a delete. */
function inverseOf(row: RawChangeRow): Inverse {
  return row.operation === 'DELETE' ? 'insert' : row.operation === 'CREATE' ? 'delete' : row.operation === 'UPDATE' ? 'update' : 'none';
}

/**
 * The referencing value of `columns` in an image, as comparable text: null when one of them is
 * NULL (MATCH SIMPLE: no reference), undefined when one is not known (absent, redacted, TOAST).
 */
function referenceOf(image: Record<string, unknown>, columns: string[]): string | null | undefined {
  const values: unknown[] = [];
  for (const c of columns) {
    const v = image[c];
    if (v === null) return null;
    if (v === undefined || v === UNCHANGED_TOAST_MARKER || isRedactedValue(v)) return undefined;
    values.push(v);
  }
  return JSON.stringify(values);
}

interface Edge {
  from: number;
  to: number;
  /** The foreign key that asks for this order; none for two changes of the same row. */
  key?: ForeignKey;
}

/**
 * Orders the inverse statements of a transaction (`rows` newest first) so that every foreign key
 * holds after each one: a row is re-inserted after the row it references, a created row is
 * deleted before the row it references, and an UPDATE that moved a reference is undone after its
 * old target is back and before its new target is deleted. Edges are per row (matched on the
 * referencing values), so a self-referencing table orders itself like any parent and child; an
 * unknown referencing value orders against every row of the referenced table. Two changes of the
 * same row keep their newest-first order; otherwise newest first wins wherever nothing else
 * decides. Rows that reference each other in a cycle need their constraints deferred: returned
 * in `defer` when DEFERRABLE, else BemiRevertOrderError.
 */
function orderInverses(rows: RawChangeRow[], keys: ForeignKey[], changeId: string): { rows: RawChangeRow[]; defer: ForeignKey[] } {
  const inverse = rows.map(inverseOf);
  const images = rows.map((r) => ({ before: imageOf(r.before), after: imageOf(r.after) }));
  const edges: Edge[] = [];

  const lastOfRow = new Map<string, number>();
  rows.forEach((r, i) => {
    if (r.primary_key === null) return;
    const id = `${r.schema}.${r.table}\u0000${r.primary_key}`;
    const previous = lastOfRow.get(id);
    if (previous !== undefined) edges.push({ from: previous, to: i });
    lastOfRow.set(id, i);
  });

  const tableIs = (r: RawChangeRow, schema: string, table: string) => r.schema === schema && r.table === table;
  for (const key of keys) {
    // The referenced rows that are re-inserted (by their before image) and deleted (by their after image).
    const restored = new Map<string, number[]>();
    const removed = new Map<string, number[]>();
    const all = { insert: [] as number[], delete: [] as number[] };
    rows.forEach((r, i) => {
      if (!tableIs(r, key.parentSchema, key.parentTable) || (inverse[i] !== 'insert' && inverse[i] !== 'delete')) return;
      const kind = inverse[i] as 'insert' | 'delete';
      const ref = referenceOf(kind === 'insert' ? images[i].before : images[i].after, key.parentColumns);
      all[kind].push(i);
      if (typeof ref !== 'string') return;
      const index = kind === 'insert' ? restored : removed;
      const list = index.get(ref);
      if (list) list.push(i);
      else index.set(ref, [i]);
    });
    if (all.insert.length === 0 && all.delete.length === 0) continue;
    rows.forEach((r, i) => {
      if (!tableIs(r, key.childSchema, key.childTable)) return;
      const { before, after } = images[i];
      const moved = inverse[i] === 'update' && referenceOf(before, key.childColumns) !== referenceOf(after, key.childColumns);
      // What the row references once undone: its target must be back first.
      if (inverse[i] === 'insert' || moved) {
        const ref = referenceOf(before, key.childColumns);
        const targets = ref === undefined ? all.insert : ref === null ? [] : (restored.get(ref) ?? []);
        for (const t of targets) if (t !== i) edges.push({ from: t, to: i, key });
      }
      // What the row referenced before being undone: it must let go before its target is deleted.
      if (inverse[i] === 'delete' || moved) {
        const ref = referenceOf(after, key.childColumns);
        const targets = ref === undefined ? all.delete : ref === null ? [] : (removed.get(ref) ?? []);
        for (const t of targets) if (t !== i) edges.push({ from: i, to: t, key });
      }
    });
  }

  let order = topologicalOrder(rows.length, edges);
  const defer: ForeignKey[] = [];
  if (order.stuck.length) {
    // Defer the DEFERRABLE keys on the cycles, then order by the edges that are left.
    const cycleKeys = keysOnCycles(order.stuck, edges);
    for (const k of cycleKeys) if (k.deferrable && !defer.some((d) => d.name === k.name)) defer.push(k);
    if (defer.length) order = topologicalOrder(rows.length, edges.filter((e) => !e.key || !defer.includes(e.key)));
    if (order.stuck.length) {
      const remaining = edges.filter((e) => !e.key || !defer.includes(e.key));
      const core = coreOf(order.stuck, remaining);
      const tables = [...new Set(core.map((i) => `${rows[i].schema}.${rows[i].table}`))].sort();
      const names = [...new Set(keysOnCycles(order.stuck, remaining).map((k) => k.label))].sort();
      throw new BemiRevertOrderError(changeId, tables, names);
    }
  }
  return { rows: order.done.map((i) => rows[i]), defer };
}

/** Kahn's algorithm, always taking the lowest index that is free: `stuck` holds what cycles block. */
function topologicalOrder(n: number, edges: Edge[]): { done: number[]; stuck: number[] } {
  const next: number[][] = Array.from({ length: n }, () => []);
  const waiting = new Array<number>(n).fill(0);
  for (const e of edges) {
    next[e.from].push(e.to);
    waiting[e.to]++;
  }
  const ready = new MinHeap();
  for (let i = 0; i < n; i++) if (waiting[i] === 0) ready.push(i);
  const done: number[] = [];
  while (ready.size) {
    const i = ready.pop();
    done.push(i);
    for (const j of next[i]) if (--waiting[j] === 0) ready.push(j);
  }
  const placed = new Set(done);
  return { done, stuck: [...Array(n).keys()].filter((i) => !placed.has(i)) };
}

/**
 * The stuck rows that lie on cycles: those only downstream of a cycle are peeled off (Kahn left
 * out everything upstream already), so messages and deferrals name the keys that matter.
 */
function coreOf(stuck: number[], edges: Edge[]): number[] {
  const core = new Set(stuck);
  const out = new Map<number, number>();
  const into = new Map<number, number[]>();
  for (const e of edges) {
    if (!core.has(e.from) || !core.has(e.to)) continue;
    out.set(e.from, (out.get(e.from) ?? 0) + 1);
    const from = into.get(e.to);
    if (from) from.push(e.from);
    else into.set(e.to, [e.from]);
  }
  const sinks = stuck.filter((i) => !out.get(i));
  while (sinks.length) {
    const i = sinks.pop()!;
    core.delete(i);
    for (const j of into.get(i) ?? []) {
      const left = out.get(j)! - 1;
      out.set(j, left);
      if (left === 0) sinks.push(j);
    }
  }
  return [...core];
}

function keysOnCycles(stuck: number[], edges: Edge[]): ForeignKey[] {
  const core = new Set(coreOf(stuck, edges));
  return edges.filter((e) => e.key && core.has(e.from) && core.has(e.to)).map((e) => e.key!);
}

/** A binary min-heap of indexes: newest-first order among the rows that are free to go. */
class MinHeap {
  private readonly items: number[] = [];

  get size(): number {
    return this.items.length;
  }

  push(value: number): void {
    const a = this.items;
    a.push(value);
    for (let i = a.length - 1; i > 0; ) {
      const parent = (i - 1) >> 1;
      if (a[parent] <= a[i]) break;
      [a[parent], a[i]] = [a[i], a[parent]];
      i = parent;
    }
  }

  pop(): number {
    const a = this.items;
    const top = a[0];
    const last = a.pop()!;
    if (a.length) {
      a[0] = last;
      for (let i = 0; ; ) {
        const l = 2 * i + 1;
        const r = l + 1;
        let m = i;
        if (l < a.length && a[l] < a[m]) m = l;
        if (r < a.length && a[r] < a[m]) m = r;
        if (m === i) break;
        [a[m], a[i]] = [a[i], a[m]];
        i = m;
      }
    }
    return top;
  }
}
