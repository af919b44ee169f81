import { BEMI_IGNORE_TABLE_METADATA, BEMI_ONLY_METADATA } from './rules.constants';
import { columnRulesOf } from './column-rule.metadata';
import type { BemiRedactMode, BemiRules, ColumnTreatment, CompiledRules, CompiledTableRule } from './rules.interfaces';
import { BemiError } from '../shared/bemi-error';

/** Thrown at startup when `rules` are wrong; the message names the option path and the fix. */
export class BemiRulesError extends BemiError {
  constructor(
    readonly path: string,
    readonly problem: string,
    fix: string,
  ) {
    super(`Bemi rule option "${path}" ${problem}`, fix);
  }
}

/** An entity as the compiler needs it: where it lives and how its properties map to columns. */
export interface RuleEntity {
  /** Class carrying the decorators. */
  ctor: object;
  schema?: string;
  table: string;
  /** Column name of a property, or undefined when it is not a property with one column. */
  columnOf(property: string): string | undefined;
}

const TABLE_RULE_KEYS = new Set(['ignore', 'only', 'redact']);
const RULES_KEYS = new Set(['tables', 'redactMode', 'hmacKey', 'skipIgnoredOnlyUpdates']);

/** Checks the shape of `rules` (the CLI's rules file has the same shape). Throws BemiRulesError. */
export function checkRules(input: unknown, path = 'rules'): BemiRules {
  if (input === undefined) return {};
  if (!isObject(input)) throw new BemiRulesError(path, `must be an object, got ${describe(input)}`, 'Example: rules: { tables: { users: { redact: ["password"] } } }.');
  for (const key of Object.keys(input)) {
    if (!RULES_KEYS.has(key)) throw new BemiRulesError(`${path}.${key}`, 'is not a known option', `Known: ${[...RULES_KEYS].join(', ')}.`);
  }
  const r = input as Record<string, unknown>;
  if (r.redactMode !== undefined && r.redactMode !== 'mask' && r.redactMode !== 'hmac') {
    throw new BemiRulesError(`${path}.redactMode`, `must be "mask" or "hmac", got ${describe(r.redactMode)}`, 'Remove it to use "mask".');
  }
  if (r.hmacKey !== undefined && (typeof r.hmacKey !== 'string' || r.hmacKey.length < 16)) {
    throw new BemiRulesError(`${path}.hmacKey`, 'must be a string of at least 16 characters', 'Use a long random secret, e.g. from an environment variable.');
  }
  if (r.skipIgnoredOnlyUpdates !== undefined && typeof r.skipIgnoredOnlyUpdates !== 'boolean') {
    throw new BemiRulesError(`${path}.skipIgnoredOnlyUpdates`, `must be true or false, got ${describe(r.skipIgnoredOnlyUpdates)}`, 'Remove it to use the default (false).');
  }
  if (r.tables !== undefined) {
    if (!isObject(r.tables)) throw new BemiRulesError(`${path}.tables`, `must be an object keyed by table name, got ${describe(r.tables)}`, 'Example: tables: { users: { ignore: ["last_seen_at"] } }.');
    for (const [table, rule] of Object.entries(r.tables)) checkTableRule(rule, `${path}.tables.${table}`);
  }
  return r as BemiRules;
}

function checkTableRule(rule: unknown, path: string): void {
  if (!isObject(rule)) throw new BemiRulesError(path, `must be an object, got ${describe(rule)}`, 'Example: { ignore: true } or { redact: ["password"] }.');
  for (const key of Object.keys(rule)) {
    if (!TABLE_RULE_KEYS.has(key)) throw new BemiRulesError(`${path}.${key}`, 'is not a known rule', 'Known: ignore, only, redact.');
  }
  const r = rule as Record<string, unknown>;
  if (r.ignore !== undefined && typeof r.ignore !== 'boolean' && !isNameList(r.ignore)) {
    throw new BemiRulesError(`${path}.ignore`, `must be true (the whole table) or a list of column names, got ${describe(r.ignore)}`, 'Example: ignore: ["updated_at"].');
  }
  if (r.only !== undefined && (!isNameList(r.only) || (r.only as string[]).length === 0)) {
    throw new BemiRulesError(`${path}.only`, `must be a non-empty list of column names, got ${describe(r.only)}`, 'Example: only: ["title", "status"].');
  }
  if (r.redact !== undefined) {
    const ok =
      isNameList(r.redact) ||
      (isObject(r.redact) && Object.values(r.redact).every((m) => m === 'mask' || m === 'hmac'));
    if (!ok) throw new BemiRulesError(`${path}.redact`, `must be a list of column names or a map column → "mask" | "hmac", got ${describe(r.redact)}`, 'Example: redact: { password: "hmac" }.');
  }
}

/**
 * Merges the entities' decorators with the options (options win per column) into the form the
 * capture worker applies. Property names are turned into column names where an entity maps the
 * table. Throws BemiRulesError for contradictions (a column both ignored and redacted by the same
 * source) and for `hmac` without `hmacKey`.
 */
export function compileRules(input: BemiRules | undefined, entities: readonly RuleEntity[] = []): CompiledRules {
  const rules = checkRules(input);
  const defaultMode: BemiRedactMode = rules.redactMode ?? 'mask';
  const tables = new Map<string, { ignoreTable: boolean; columns: Map<string, ColumnTreatment>; only?: Set<string> }>();
  const entityFor = (key: string) =>
    entities.find((e) => key === e.table || key === `${e.schema ?? 'public'}.${e.table}`);
  // An entity without an explicit schema lives in the ORM's default schema, whatever that is.
  const keyOf = (e: RuleEntity) => (e.schema ? `${e.schema}.${e.table}` : e.table);
  const slot = (key: string) => {
    let t = tables.get(key);
    if (!t) tables.set(key, (t = { ignoreTable: false, columns: new Map() }));
    return t;
  };

  for (const entity of entities) {
    const column = (name: string) => entity.columnOf(name) ?? name;
    const ignoreTable = Reflect.getMetadata(BEMI_IGNORE_TABLE_METADATA, entity.ctor) === true;
    const only = Reflect.getMetadata(BEMI_ONLY_METADATA, entity.ctor) as string[] | undefined;
    const columns = Object.entries(columnRulesOf(entity.ctor));
    if (!ignoreTable && !only && columns.length === 0) continue;
    const t = slot(keyOf(entity));
    t.ignoreTable = ignoreTable;
    if (only) t.only = new Set(only.map(column));
    for (const [property, treatment] of columns) {
      t.columns.set(column(property), treatment === 'default' ? defaultMode : treatment);
    }
  }

  for (const [key, rule] of Object.entries(rules.tables ?? {})) {
    const entity = entityFor(key);
    const column = (name: string) => entity?.columnOf(name) ?? name;
    const t = slot(entity ? keyOf(entity) : key);
    const path = `rules.tables.${key}`;
    if (rule.ignore === true) t.ignoreTable = true;
    if (rule.ignore === false) t.ignoreTable = false;
    if (rule.only) t.only = new Set(rule.only.map(column));
    const ignored = Array.isArray(rule.ignore) ? rule.ignore.map(column) : [];
    const redacted: [string, BemiRedactMode][] = Array.isArray(rule.redact)
      ? rule.redact.map((c) => [column(c), defaultMode])
      : Object.entries(rule.redact ?? {}).map(([c, m]) => [column(c), m]);
    for (const c of ignored) {
      if (redacted.some(([r]) => r === c)) {
        throw new BemiRulesError(path, `lists column "${c}" both in ignore and in redact`, 'Keep it in one of them: ignore leaves the value out, redact records that it changed.');
      }
      t.columns.set(c, 'ignore');
    }
    for (const [c, mode] of redacted) t.columns.set(c, mode);
  }

  const compiled = new Map<string, CompiledTableRule>();
  for (const [key, t] of tables) {
    for (const [column, treatment] of t.columns) {
      if (treatment === 'hmac' && !rules.hmacKey) {
        throw new BemiRulesError('rules.hmacKey', `is required: column "${column}" of ${key} is redacted with "hmac"`, 'Set rules.hmacKey (at least 16 characters, e.g. from an environment variable) or use "mask".');
      }
    }
    compiled.set(key, { ignoreTable: t.ignoreTable, columns: t.columns, ...(t.only ? { only: t.only } : {}) });
  }
  return { tables: compiled, hmacKey: rules.hmacKey, skipIgnoredOnlyUpdates: rules.skipIgnoredOnlyUpdates ?? false };
}

/** The rule of `schema.table`: an exact `schema.table` entry wins over a bare `table` entry. */
export function ruleFor(rules: CompiledRules | undefined, schema: string, table: string): CompiledTableRule | undefined {
  if (!rules || rules.tables.size === 0) return undefined;
  return rules.tables.get(`${schema}.${table}`) ?? rules.tables.get(table);
}

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function isNameList(value: unknown): value is string[] {
  return Array.isArray(value) && value.every((v) => typeof v === 'string' && v.length > 0);
}

function describe(value: unknown): string {
  if (value === null) return 'null';
  if (Array.isArray(value)) return 'an array';
  return typeof value === 'string' ? `"${value}"` : typeof value;
}
