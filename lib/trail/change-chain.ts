// The hash chain over the trail (capture's `chain` option): what a link covers and how it is
// computed. The worker links rows as it writes them and verify links them again from what it
// reads back; both go through this file, so they cannot disagree on a byte.
import { createHash, createHmac } from 'node:crypto';
import { canonicalJson } from './canonical-json';

/** Columns of `changes` that hold the chain (NULL on rows written with the chain off). */
export const CHAIN_HASH_COLUMN = 'chain_hash';
/** The predecessor's `commit_position` and `seq`: which row this link follows (NULL: the chain starts here). */
export const CHAIN_PREVIOUS_POSITION_COLUMN = 'chain_previous_position';
export const CHAIN_PREVIOUS_SEQ_COLUMN = 'chain_previous_seq';
export const CHAIN_COLUMNS: readonly string[] = Object.freeze([CHAIN_HASH_COLUMN, CHAIN_PREVIOUS_POSITION_COLUMN, CHAIN_PREVIOUS_SEQ_COLUMN]);

/** How a chained column's value is written into the hashed content. */
export type ChainedKind = 'text' | 'json' | 'integer' | 'micros';

export interface ChainedColumn {
  /** Column of `changes`. */
  column: string;
  /** Its field in the worker's row (`ChangeRow`). */
  field: string;
  /** `json`: canonical JSON; `integer`: decimal text; `micros`: a timestamp as integer microseconds since 1970; `text`: a JSON string. */
  kind: ChainedKind;
}

/**
 * What a link covers: every column of a change except `id`, `queued_at`, `created_at` (the
 * worker's own bookkeeping) and the chain columns. A column added to `changes` is covered by
 * adding it here; NULL values are left out of the content, so rows written before a nullable
 * column existed still verify.
 */
export const CHAINED_COLUMNS: readonly ChainedColumn[] = Object.freeze([
  { column: 'primary_key', field: 'primaryKey', kind: 'text' },
  { column: 'previous_key', field: 'previousKey', kind: 'text' },
  { column: 'before', field: 'before', kind: 'json' },
  { column: 'after', field: 'after', kind: 'json' },
  { column: 'context', field: 'context', kind: 'json' },
  { column: 'role', field: 'role', kind: 'text' },
  { column: 'session_role', field: 'sessionRole', kind: 'text' },
  { column: 'database', field: 'database', kind: 'text' },
  { column: 'schema', field: 'schema', kind: 'text' },
  { column: 'table', field: 'table', kind: 'text' },
  { column: 'operation', field: 'operation', kind: 'text' },
  { column: 'committed_at', field: 'committedAt', kind: 'micros' },
  { column: 'transaction_id', field: 'transactionId', kind: 'integer' },
  { column: 'position', field: 'position', kind: 'integer' },
  { column: 'commit_position', field: 'commitPosition', kind: 'integer' },
  { column: 'seq', field: 'seq', kind: 'integer' },
  { column: 'context_seq', field: 'contextSeq', kind: 'integer' },
] satisfies ChainedColumn[]);

/** A chained column's value as content takes it (`micros` as integer text); null for SQL NULL. */
export type ChainedValue = string | number | null;

/**
 * The hashed content of one change: a JSON object of its chained columns in list order, NULLs
 * left out, JSON columns canonical ({@link canonicalJson}).
 */
export function chainContent(value: (column: ChainedColumn) => ChainedValue): string {
  let out = '{';
  for (const c of CHAINED_COLUMNS) {
    const v = value(c);
    if (v === null || v === undefined) continue;
    const text = c.kind === 'json' ? canonicalJson(String(v)) : c.kind === 'text' ? JSON.stringify(String(v)) : String(v);
    out += `${out.length === 1 ? '' : ','}"${c.column}":${text}`;
  }
  return `${out}}`;
}

/** Names the scheme in every link, so a later scheme can never produce an equal hash by accident. */
const SCHEME = Buffer.from('nestjs-bemi chain 1\n');
/** The "previous hash" of the first link of a chain. */
const NO_PREDECESSOR = Buffer.alloc(32);

/**
 * The hash of a link: SHA-256 (HMAC-SHA256 with `key`) over the scheme, the predecessor's hash
 * (32 zero bytes at the start of a chain) and the content.
 */
export function linkHash(previousHash: Buffer | null, content: string, key?: string): Buffer {
  const h = key === undefined ? createHash('sha256') : createHmac('sha256', key);
  h.update(SCHEME);
  h.update(previousHash ?? NO_PREDECESSOR);
  h.update(content, 'utf8');
  return h.digest();
}

/** Microseconds since 1970 of ISO text with six fractional digits (the worker's `committedAt`). */
export function isoToMicros(iso: string): string {
  const m = /^(.+\.\d{3})(\d{3})Z$/.exec(iso);
  if (!m) throw new Error(`isoToMicros: expected six fractional digits, got ${iso}`);
  return (BigInt(Date.parse(`${m[1]}Z`)) * 1000n + BigInt(m[2])).toString();
}

/** SQL that reads a chained column back as the text content takes (`ident` quotes a column name). */
export function chainedColumnSql(c: ChainedColumn, ident: (name: string) => string): string {
  const col = ident(c.column);
  switch (c.kind) {
    case 'json':
    case 'integer':
      return `${col}::text`;
    case 'micros':
      // extract() is exact (numeric) since PostgreSQL 14.
      return `(extract(epoch FROM ${col}) * 1000000)::bigint::text`;
    default:
      return col;
  }
}
