import { BEMI_COMMENT_END, BEMI_COMMENT_START } from '../shared/wire-format';
import { REDACTED_VALUE } from '../rules/rules.constants';

/** Tells which object keys hold secrets; their values are written as `"[REDACTED]"`. */
export type SecretKeyTest = (key: string) => boolean;

/**
 * Turns a context value into something JSON can hold, deterministically and without throwing
 * for ordinary input:
 * - `bigint` becomes its decimal string; `Date` and objects with `toJSON()` use it;
 * - `Map` becomes an object of its entries (keys stringified), `Set` an array;
 * - `undefined`, functions and symbols are dropped from objects and become `null` in arrays;
 * - non-finite numbers become `null`;
 * - a reference back to an enclosing object becomes the string `"[Circular]"`.
 * A value shared by two branches (not a cycle) is written out in both places.
 * With `isSecret`, the value of every key it matches, at any depth, becomes `"[REDACTED]"`.
 */
export function toJsonSafe(value: unknown, isSecret?: SecretKeyTest): unknown {
  return convert(value, new Set(), isSecret);
}

function convert(value: unknown, ancestors: Set<object>, isSecret: SecretKeyTest | undefined): unknown {
  switch (typeof value) {
    case 'string':
    case 'boolean':
      return value;
    case 'number':
      return Number.isFinite(value) ? value : null;
    case 'bigint':
      return value.toString();
    case 'undefined':
    case 'function':
    case 'symbol':
      return undefined;
  }
  if (value === null) return null;
  const obj = value as object;
  if (ancestors.has(obj)) return '[Circular]';
  ancestors.add(obj);
  try {
    if (typeof (obj as { toJSON?: unknown }).toJSON === 'function') {
      return convert((obj as { toJSON: (key: string) => unknown }).toJSON(''), ancestors, isSecret);
    }
    if (Array.isArray(obj) || obj instanceof Set) {
      return Array.from(obj as Iterable<unknown>, (item) => convert(item, ancestors, isSecret) ?? null);
    }
    const out: Record<string, unknown> = {};
    const entries = obj instanceof Map ? [...obj.entries()].map(([k, v]) => [String(k), v] as const) : Object.entries(obj);
    for (const [key, item] of entries) {
      const converted = convert(item, ancestors, isSecret);
      if (converted !== undefined) out[key] = isSecret?.(key) ? REDACTED_VALUE : converted;
    }
    return out;
  } finally {
    ancestors.delete(obj);
  }
}

/**
 * Serialises a context to JSON that is safe inside a SQL block comment placed before the
 * statement: `*` is written as `\u002a` (so the text can neither close nor nest a comment, nor
 * contain the ` Bemi*\/` terminator) and `?` as `\u003f` (MikroORM replaces `?` with parameters
 * even inside comments). Both characters can only occur inside JSON strings, where the escapes
 * decode back to the same value in JavaScript and in PostgreSQL's json/jsonb.
 * Values under secret keys (`isSecret`) are masked here, before the context leaves the process.
 */
export function encodeContext(context: unknown, isSecret?: SecretKeyTest): string {
  const json = JSON.stringify(toJsonSafe(context, isSecret)) ?? '{}';
  return json.replace(/[*?]/g, (ch) => (ch === '*' ? '\\u002a' : '\\u003f'));
}

/** The comment put in front of a DML statement: `/*Bemi <json> Bemi*\/ `. */
export function contextComment(encoded: string): string {
  return `${BEMI_COMMENT_START}${encoded}${BEMI_COMMENT_END} `;
}
