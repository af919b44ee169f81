import { ReferenceKind, type EntityManager, type EntityMetadata, type EntityProperty, type Platform } from '@mikro-orm/core';
import { UNCHANGED_TOAST_MARKER } from '../trail/json-values';
import { BemiHistoryArgumentError } from './history.errors';
import type { ChangeOperation, HistoryChange, HistoryDiff } from './history.interfaces';
import type { TrailPosition } from './trail.sql';

/** Raw row of `CHANGE_COLUMNS` in history-reader.sql.ts. */
export interface RawChangeRow {
  id: string;
  primary_key: string | null;
  previous_key: string | null;
  /** JSON text (from SQL) or an already parsed object (from a BemiChange entity). */
  before: string | Record<string, unknown> | null;
  after: string | Record<string, unknown> | null;
  context: Record<string, unknown> | null;
  role: string | null;
  session_role: string | null;
  database: string;
  schema: string;
  table: string;
  operation: ChangeOperation;
  commit_ts: string;
  transaction_id: string;
  position: string;
  commit_position: string;
  seq: number;
}

// ---- cursors ------------------------------------------------------------------------------

/** Opaque to callers; inside it is the change's place in the true order. */
export function encodeCursor(commitPosition: string, seq: number): string {
  return Buffer.from(`${commitPosition}:${seq}`, 'utf8').toString('base64url');
}

export function decodeCursor(value: unknown, method: string): TrailPosition {
  const cursor = value && typeof value === 'object' && 'cursor' in value ? (value as { cursor: unknown }).cursor : value;
  const bad = () => new BemiHistoryArgumentError(method, 'after', `is not a cursor returned by BemiHistory (got ${typeof cursor === 'string' ? JSON.stringify(cursor) : typeof cursor}).`);
  if (typeof cursor !== 'string') throw bad();
  const m = /^(\d{1,20}):(\d{1,10})$/.exec(Buffer.from(cursor, 'base64url').toString('utf8'));
  if (!m) throw bad();
  return { commitPosition: m[1], seq: Number(m[2]) };
}

// ---- changes ------------------------------------------------------------------------------

export interface MappingInfo {
  meta?: EntityMetadata<any>;
  columnToProp: Map<string, string>;
}

export function toHistoryChange(row: RawChangeRow, mapping: MappingInfo | undefined, platform: Platform): HistoryChange {
  return {
    id: row.id,
    cursor: encodeCursor(row.commit_position, row.seq),
    database: row.database,
    schema: row.schema,
    table: row.table,
    ...(mapping?.meta ? { entity: mapping.meta.className } : {}),
    primaryKey: row.primary_key,
    previousKey: row.previous_key,
    operation: row.operation,
    before: mapImage(imageOf(row.before), mapping, platform),
    after: mapImage(imageOf(row.after), mapping, platform),
    context: row.context ?? {},
    role: row.role,
    sessionRole: row.session_role,
    committedAt: new Date(row.commit_ts),
    commitTimestamp: row.commit_ts,
    transactionId: row.transaction_id,
    position: row.position,
    commitPosition: row.commit_position,
    seq: Number(row.seq),
  };
}

export function imageOf(value: string | Record<string, unknown> | null): Record<string, unknown> {
  if (value === null || value === undefined) return {};
  return typeof value === 'string' ? (parseJsonExact(value) as Record<string, unknown>) : value;
}

const JSON_TOKEN = /"(?:[^"\\]|\\.)*"|-?\d+(?:\.\d+)?(?:[eE][+-]?\d+)?|[{}[\]]/g;

/**
 * JSON.parse, except that a top-level number whose text a double would not give back exactly
 * (numeric `12.50`, bigint beyond 2^53) stays a string of its digits. Strings are matched as
 * whole tokens first, so digits inside them are never touched.
 */
export function parseJsonExact(text: string): unknown {
  let depth = 0;
  const rewritten = text.replace(JSON_TOKEN, (token) => {
    const c = token[0];
    if (c === '{' || c === '[') depth++;
    else if (c === '}' || c === ']') depth--;
    else if (c !== '"' && depth === 1 && String(Number(token)) !== token) return JSON.stringify(token);
    return token;
  });
  return JSON.parse(rewritten);
}

/** Column-keyed image → property-keyed values, converted to the properties' JS types where the text allows. */
function mapImage(image: Record<string, unknown>, mapping: MappingInfo | undefined, platform: Platform): Record<string, unknown> {
  if (!mapping?.meta) return { ...image };
  const out: Record<string, unknown> = {};
  for (const [column, value] of Object.entries(image)) {
    const propName = mapping.columnToProp.get(column);
    const prop = propName ? mapping.meta.properties[propName] : undefined;
    out[propName ?? column] = prop ? convertValue(prop, value, platform) : value;
  }
  return out;
}

/**
 * The captured JSON holds values as pgoutput's text gives them (numbers may arrive as strings,
 * timestamps as PostgreSQL text). Convert only when the text is unambiguous; otherwise keep it.
 */
export function convertValue(prop: EntityProperty<any>, value: unknown, platform: Platform): unknown {
  if (value === null || value === undefined) return value;
  if (prop.kind !== ReferenceKind.SCALAR) {
    // A foreign key: give its value in the target's key type when that is a number.
    const targetPk = prop.targetMeta?.getPrimaryProps?.()[0];
    return targetPk ? convertValue(targetPk, value, platform) : value;
  }
  const runtime = String(prop.runtimeType ?? '').toLowerCase();
  if (prop.customType && !['number', 'boolean', 'date'].includes(runtime)) {
    if (runtime === 'bigint' && (typeof value === 'string' || typeof value === 'number')) return BigInt(value);
    if (runtime === 'string' && typeof value === 'number') return String(value);
    return value;
  }
  switch (runtime) {
    case 'number':
      if (typeof value === 'string' && value.trim() !== '' && Number.isFinite(Number(value))) return Number(value);
      return value;
    case 'boolean':
      if (value === 't' || value === 'true') return true;
      if (value === 'f' || value === 'false') return false;
      return value;
    case 'date':
      if (typeof value === 'string') {
        const parsed = platform.parseDate(value);
        return parsed instanceof Date && !Number.isNaN(parsed.getTime()) ? parsed : value;
      }
      return value;
    case 'bigint':
      return typeof value === 'string' || typeof value === 'number' ? BigInt(value) : value;
    case 'string':
      return typeof value === 'number' ? String(value) : value;
    default:
      return value;
  }
}

/** `{ field: [before, after] }` for fields whose values differ; a missing side is `undefined`. */
export function diffChange(change: Pick<HistoryChange, 'before' | 'after'>): HistoryDiff {
  const out: HistoryDiff = {};
  const keys = new Set([...Object.keys(change.before ?? {}), ...Object.keys(change.after ?? {})]);
  for (const key of keys) {
    const b = change.before?.[key];
    const a = change.after?.[key];
    // The capture marks a large value an UPDATE did not touch: unchanged by definition.
    if (a === UNCHANGED_TOAST_MARKER || b === UNCHANGED_TOAST_MARKER) continue;
    if (!sameValue(b, a)) out[key] = [b, a];
  }
  return out;
}

function sameValue(a: unknown, b: unknown): boolean {
  if (a === b) return true;
  if (a === undefined || b === undefined) return false;
  return canonical(a) === canonical(b);
}

/** JSON with sorted keys, so `{a,b}` and `{b,a}` (jsonb reorders keys) compare equal. */
function canonical(value: unknown): string {
  return JSON.stringify(value, (_k, v) => {
    if (typeof v === 'bigint') return `${v}n`;
    if (v && typeof v === 'object' && !Array.isArray(v) && !(v instanceof Date)) {
      return Object.fromEntries(Object.keys(v).sort().map((k) => [k, (v as Record<string, unknown>)[k]]));
    }
    return v;
  });
}

// ---- entities -----------------------------------------------------------------------------

/**
 * A database row (column names, values as MikroORM's own queries receive them) → an entity
 * instance that no EntityManager manages. A throwaway fork is used so that an instance the
 * caller's em already manages is never found and overwritten with past data.
 *
 * MikroORM's factory gives every instance change-tracking accessors (one defineProperty per
 * property per instance: ~9 µs an entity, most of tableAt()'s JS time for 10,000 rows). A
 * detached snapshot tracks nothing, so when the entity allows it, MikroORM's own compiled
 * hydrator (same conversions, references and embeddables) fills a plain object that then takes
 * the entity's prototype: ~1 µs an entity, the same values and class.
 */
export function hydrateDetached(em: EntityManager, meta: EntityMetadata<any>, rows: Record<string, unknown>[]): any[] {
  if (rows.length === 0) return [];
  const fork = em.fork({ clear: true, useContext: false, freshEventManager: true });
  const driver = fork.getDriver();
  const factory = fork.getEntityFactory();
  if (!plainHydration(meta)) {
    return rows.map((row) => {
      const data = driver.mapResult(row as any, meta) as Record<string, unknown>;
      return factory.create(meta.class, data as any, { merge: false, refresh: true, newEntity: false, convertCustomTypes: true, initialized: true });
    });
  }
  const hydrator = fork.config.getHydrator(fork.getMetadata());
  return rows.map((row) => {
    const data = driver.mapResult(row as any, meta) as Record<string, unknown>;
    const entity = {};
    hydrator.hydrate(entity, meta, data as any, factory, 'full', false, true);
    return Object.setPrototypeOf(entity, meta.prototype);
  });
}

/**
 * Whether an entity can be hydrated as a plain object: collections need their owner to be an
 * entity already, class accessors must run their own setters, and a constructor MikroORM is told
 * to always call must run; those take the factory path.
 */
function plainHydration(meta: EntityMetadata<any>): boolean {
  if (meta.forceConstructor || meta.virtual || meta.discriminatorColumn) return false;
  return meta.props.every((p) => p.kind !== ReferenceKind.ONE_TO_MANY && p.kind !== ReferenceKind.MANY_TO_MANY && !p.accessor && !p.getter && !p.setter);
}
