/**
 * Turns pgoutput's text values into JSON text for the `before`/`after` columns. JSON is built as
 * text rather than through JS values so that jsonb keeps numbers exactly as PostgreSQL printed
 * them (numeric digits, bigint beyond 2^53) instead of going through a float.
 */

/** How a column's value is written in JSON. */
export type ValueKind = 'bool' | 'number' | 'json' | 'string' | { array: Exclude<ValueKind, { array: unknown }> };

/**
 * Written for a column whose value the WAL does not carry: an unchanged TOASTed value of an
 * UPDATE on a table without `REPLICA IDENTITY FULL`. Never a real value of the column.
 */
export const UNCHANGED_TOAST_MARKER = '__bemi_unchanged_toast__';

const NUMBER_TYPES = new Set([20, 21, 23, 26, 700, 701, 1700]); // int8 int2 int4 oid float4 float8 numeric
const JSON_TYPES = new Set([114, 3802]); // json jsonb

/** Kind of a base (domain-resolved) type from its OID and pg_type category/delimiter. */
export function valueKind(baseOid: number, category: string, elem?: { oid: number; delimiter: string }): ValueKind {
  if (category === 'A' && elem) {
    const inner = valueKind(elem.oid, '');
    // Only ',' separated arrays parse here (box[] uses ';'); anything else stays a string.
    return elem.delimiter === ',' && typeof inner === 'string' ? { array: inner } : 'string';
  }
  if (baseOid === 16) return 'bool';
  if (NUMBER_TYPES.has(baseOid)) return 'number';
  if (JSON_TYPES.has(baseOid)) return 'json';
  return 'string';
}

/** JSON text of one value; `null` (SQL NULL) → `null`. */
export function valueToJson(text: string | null, kind: ValueKind): string {
  if (text === null) return 'null';
  if (typeof kind === 'object') return arrayToJson(text, kind.array) ?? JSON.stringify(text);
  return scalarToJson(text, kind);
}

function scalarToJson(text: string, kind: Exclude<ValueKind, { array: unknown }>): string {
  switch (kind) {
    case 'bool':
      return text === 't' ? 'true' : text === 'f' ? 'false' : JSON.stringify(text);
    case 'number':
      // NaN and ±Infinity (float and numeric) have no JSON number form.
      return /^-?\d+(\.\d+)?([eE][+-]?\d+)?$/.test(text) ? text : JSON.stringify(text);
    case 'json':
      return jsonbSafe(text);
    default:
      return JSON.stringify(text);
  }
}

/**
 * The `json` type may hold `\u0000` and unpaired surrogate escapes, which jsonb rejects (the
 * whole batch would fail). Those escapes are rewritten to `\ufffd` (U+FFFD) in the text itself,
 * so everything else, numbers included, stays exactly as stored.
 */
export function jsonbSafe(text: string): string {
  if (!/\\u(0000|[dD][89a-fA-F])/.test(text)) return text;
  return text.replace(/(\\+)u([0-9a-fA-F]{4})((?:\\u[dD][c-fC-F][0-9a-fA-F]{2})?)/g, (match, slashes: string, hex: string, low: string) => {
    // A following low-surrogate escape was consumed by the pattern; alone, it is unpaired.
    const lowAlone = low ? '\\ufffd' : '';
    if (slashes.length % 2 === 0) return `${slashes}u${hex}${lowAlone}`; // "\\u...": an escaped backslash, then text
    const code = parseInt(hex, 16);
    const keep = slashes.slice(0, -1);
    if (code >= 0xd800 && code <= 0xdbff) return low ? match : `${keep}\\ufffd`;
    if (code === 0 || (code >= 0xdc00 && code <= 0xdfff)) return `${keep}\\ufffd${lowAlone}`;
    return `${keep}\\u${hex}${lowAlone}`;
  });
}

/**
 * PostgreSQL array text (`{1,NULL,"a \"b\""}`, nested `{{1,2},{3,4}}`) as a JSON array, elements
 * encoded by their own kind. Returns undefined for forms kept as plain strings (explicit bounds
 * such as `[0:1]={1,2}`).
 */
export function arrayToJson(text: string, kind: Exclude<ValueKind, { array: unknown }>): string | undefined {
  if (text[0] !== '{') return undefined;
  let i = 0;
  const parse = (): string => {
    i++; // '{'
    if (text[i] === '}') {
      i++;
      return '[]';
    }
    const parts: string[] = [];
    for (;;) {
      if (text[i] === '{') {
        parts.push(parse());
      } else if (text[i] === '"') {
        i++;
        let value = '';
        let from = i;
        while (text[i] !== '"') {
          if (text[i] === '\\') {
            value += text.slice(from, i);
            i++;
            from = i;
          }
          i++;
          if (i > text.length) throw new Error('unterminated array element');
        }
        value += text.slice(from, i);
        i++;
        parts.push(scalarToJson(value, kind));
      } else {
        const start = i;
        while (i < text.length && text[i] !== ',' && text[i] !== '}') i++;
        const raw = text.slice(start, i);
        parts.push(raw === 'NULL' ? 'null' : scalarToJson(raw, kind));
      }
      if (text[i] === ',') {
        i++;
      } else if (text[i] === '}') {
        i++;
        return `[${parts.join(',')}]`;
      } else {
        throw new Error('malformed array');
      }
    }
  };
  try {
    return parse();
  } catch {
    return undefined;
  }
}
