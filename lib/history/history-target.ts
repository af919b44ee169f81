import { valueKind } from '../trail/json-values';
import { EntitySchema, ReferenceKind, Utils, type EntityMetadata, type MikroORM } from '@mikro-orm/core';
import { allEntityMetadata, entityMetadataByName } from '../shared/mikro-orm-metadata';
import { BemiHistoryArgumentError, BemiUnknownEntityError } from './history.errors';
import type { HistoryTarget } from './history.interfaces';
import { tableCatalogSql } from './history-target.sql';
import type { KeyColumn, LiveTable } from './trail.sql';
import { describe } from './history-time';

export interface ColumnInfo {
  name: string;
  type: string;
  generated: boolean;
  identityAlways: boolean;
}

/** A history target resolved to its table, its catalog facts and (when mapped) its entity metadata. */
export interface ResolvedTarget extends LiveTable {
  meta?: EntityMetadata<any>;
  /** Live columns in table order; empty when the table no longer exists. */
  columns: ColumnInfo[];
  exists: boolean;
  columnToProp: Map<string, string>;
  propToColumn: Map<string, string>;
  /** For messages: `Todo (public.todo)` or `public.todo`. */
  label: string;
}

type Execute = (sql: string, params: unknown[]) => Promise<any[]>;

/**
 * Resolves entity classes, EntitySchemas, entity names and table names. The catalog part is
 * cached per table for a short while: it costs a round trip and changes only with migrations.
 */
export class TargetResolver {
  private readonly catalog = new Map<string, { at: number; columns: ColumnInfo[]; keys: KeyColumn[] }>();
  private static readonly CATALOG_TTL_MS = 30_000;

  constructor(private readonly orm: MikroORM) {}

  /** Entity metadata for a target, or undefined when it is a plain table name. Throws for unknown classes. */
  findMeta(target: HistoryTarget, method: string): EntityMetadata<any> | undefined {
    if (typeof target === 'string') {
      const byName = entityMetadataByName(this.orm, target);
      if (byName && !byName.virtual && !byName.embeddable) return byName;
      const all = allEntityMetadata(this.orm).filter((m) => !m.virtual && !m.embeddable && !m.pivotTable && m.tableName);
      const [schema, table] = splitTableName(target);
      return all.find((m) => m.tableName === table && (schema === undefined || this.schemaOf(m) === schema));
    }
    if (typeof target !== 'function' && !(target instanceof EntitySchema) && !(target && typeof target === 'object')) {
      throw new BemiHistoryArgumentError(method, 'entity', `must be an entity class, EntitySchema, entity name or table name, got ${describe(target)}.`);
    }
    let name: string;
    try {
      name = Utils.className(target as any);
    } catch {
      name = String((target as { name?: unknown })?.name ?? target);
    }
    const meta = entityMetadataByName(this.orm, name);
    if (!meta || meta.virtual || meta.embeddable) {
      throw new BemiUnknownEntityError(method, name, 'Add it to the MikroORM `entities` (discovery) before asking for its history.');
    }
    return meta;
  }

  /** Metadata of the entity mapped to schema.table, if any (to name properties of changes). */
  metaForTable(schema: string, table: string): EntityMetadata<any> | undefined {
    return allEntityMetadata(this.orm).find(
      (m) => !m.virtual && !m.embeddable && m.tableName === table && this.schemaOf(m) === schema,
    );
  }

  schemaOf(meta: EntityMetadata<any>): string {
    const schema = meta.schema && meta.schema !== '*' ? meta.schema : this.orm.config.get('schema');
    return schema ?? this.orm.em.getPlatform().getDefaultSchemaName() ?? 'public';
  }

  async resolve(target: HistoryTarget, method: string, execute: Execute, options: { requireTable: boolean }): Promise<ResolvedTarget> {
    const meta = this.findMeta(target, method);
    let schema: string;
    let table: string;
    if (meta) {
      schema = this.schemaOf(meta);
      table = meta.tableName;
    } else {
      const [s, t] = splitTableName(target as string);
      schema = s ?? (this.orm.config.get('schema') as string | undefined) ?? 'public';
      table = t;
    }
    const { columns, keys } = await this.loadCatalog(schema, table, execute);
    const exists = columns.length > 0;
    if (!exists && options.requireTable) {
      if (!meta) {
        throw new BemiUnknownEntityError(method, String(target), `No MikroORM entity has that name and there is no table ${schema}.${table}.`);
      }
      throw new BemiUnknownEntityError(method, meta.className, `Its table ${schema}.${table} does not exist, so there is no live data to combine with the trail.`);
    }
    const columnToProp = new Map<string, string>();
    const propToColumn = new Map<string, string>();
    if (meta) {
      for (const prop of meta.props) {
        if (prop.persist === false || !prop.fieldNames || prop.fieldNames.length !== 1) continue;
        if (![ReferenceKind.SCALAR, ReferenceKind.MANY_TO_ONE, ReferenceKind.ONE_TO_ONE].includes(prop.kind)) continue;
        if (prop.kind === ReferenceKind.ONE_TO_ONE && !prop.owner) continue;
        columnToProp.set(prop.fieldNames[0], prop.name);
        propToColumn.set(prop.name, prop.fieldNames[0]);
      }
    }
    return {
      schema,
      table,
      meta,
      columns,
      exists,
      keyColumns: keys,
      hasNonKeyColumns: columns.some((c) => !keys.some((k) => k.name === c.name)),
      columnToProp,
      propToColumn,
      label: meta ? `${meta.className} (${schema}.${table})` : `${schema}.${table}`,
    };
  }

  private async loadCatalog(schema: string, table: string, execute: Execute) {
    const cacheKey = `${schema}\u0000${table}`;
    const cached = this.catalog.get(cacheKey);
    if (cached && Date.now() - cached.at < TargetResolver.CATALOG_TTL_MS) return cached;
    const { sql, params } = tableCatalogSql(schema, table);
    const rows = await execute(sql, params);
    const columns: ColumnInfo[] = rows.map((r) => ({ name: r.name, type: r.type, generated: r.generated, identityAlways: r.identity_always }));
    const keys = rows
      .filter((r) => Number(r.key_position) > 0)
      .sort((a, b) => Number(a.key_position) - Number(b.key_position))
      .map((r) => ({ name: r.name as string, type: r.type as string, kind: valueKind(Number(r.base_oid), String(r.category)) }));
    const entry = { at: Date.now(), columns, keys };
    this.catalog.set(cacheKey, entry);
    return entry;
  }
}

/** `'audit.todo'` → ['audit', 'todo']; `'todo'` → [undefined, 'todo']. */
function splitTableName(name: string): [string | undefined, string] {
  const dot = name.indexOf('.');
  return dot > 0 ? [name.slice(0, dot), name.slice(dot + 1)] : [undefined, name];
}

/**
 * Normalises a primary key argument to the text of each key column, in key order. Accepts a
 * scalar (single key), an array in key order, an object by property or column name, or an
 * entity instance/reference.
 */
export function keyValues(target: ResolvedTarget, input: unknown, method: string, argument = 'primaryKey'): string[] {
  const cols = target.keyColumns;
  if (cols.length === 0) {
    throw new BemiHistoryArgumentError(method, 'entity', `${target.label} has no primary key, so its rows cannot be told apart in the trail.`);
  }
  const expected = cols.map((c) => target.columnToProp.get(c.name) ?? c.name).join(', ');
  const fail = (problem: string): never => {
    throw new BemiHistoryArgumentError(method, argument, `${problem} ${target.label} has ${cols.length === 1 ? 'the key' : 'the composite key'} (${expected}).`);
  };
  if (input === undefined || input === null) fail(`is ${input}.`);
  let values: unknown[];
  if (Array.isArray(input)) {
    if (input.length !== cols.length) fail(`has ${input.length} values, expected ${cols.length}.`);
    values = input;
  } else if (isScalar(input)) {
    if (cols.length !== 1) fail(`is a single value, but a composite key needs an object or an array.`);
    values = [input];
  } else if (typeof input === 'object') {
    const obj = input as Record<string, unknown>;
    values = cols.map((c) => {
      const prop = target.columnToProp.get(c.name);
      const v = prop !== undefined && prop in obj ? obj[prop] : obj[c.name];
      if (v === undefined || v === null) fail(`lacks "${prop ?? c.name}".`);
      return v;
    });
  } else {
    return fail(`must be a key value, an array or an object, got ${describe(input)}.`);
  }
  return values.map((v) => {
    const scalar = unwrapReference(v);
    if (!isScalar(scalar)) fail(`contains ${describe(v)}, which is not a key value.`);
    return scalar instanceof Date ? scalar.toISOString() : String(scalar);
  });
}

function isScalar(v: unknown): v is string | number | bigint | boolean | Date {
  return ['string', 'number', 'bigint', 'boolean'].includes(typeof v) || v instanceof Date;
}

/** An entity (or reference) used as a key value stands for its primary key. */
function unwrapReference(v: unknown): unknown {
  if (v && typeof v === 'object' && !(v instanceof Date)) {
    const wrapped = (v as { __helper?: { getPrimaryKey(): unknown } }).__helper;
    if (wrapped) return wrapped.getPrimaryKey();
    const unwrapped = (v as { unwrap?: () => unknown }).unwrap?.();
    if (unwrapped) return unwrapReference(unwrapped);
  }
  return v;
}
