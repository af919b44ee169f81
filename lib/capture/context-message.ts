// A `_bemi` message as the worker receives it: from any role that may call
// pg_logical_emit_message, so untrusted input. This file decides what of it is stored.
import { jsonbSafe } from '../trail/json-values';

/** What a context message may be; anything else is stored as the invalid-context marker. */
export interface ContextLimits {
  /** Largest message, in bytes. */
  maxBytes: number;
  /** Deepest nesting of objects and arrays. */
  maxDepth: number;
}

/**
 * Deep enough for any context the ORM hook can encode (its own recursion gives up first), shallow
 * enough for jsonb and for every step here, none of which recurses.
 */
export const MAX_CONTEXT_DEPTH = 4096;
export const DEFAULT_CONTEXT_LIMITS: ContextLimits = Object.freeze({ maxBytes: 8 * 1024 * 1024, maxDepth: MAX_CONTEXT_DEPTH });

/** The marker stored in place of a context message that cannot be stored as it is. */
export function invalidContextJson(reason: string, excerpt?: string): string {
  return JSON.stringify({ _bemi: { invalidContext: reason, ...(excerpt !== undefined ? { excerpt } : {}) } });
}

/**
 * Context JSON as stored, from a `_bemi` message as any role may have emitted it. A JSON object
 * within the limits is kept as its own text (exact numbers; U+0000 and lone-surrogate escapes
 * become U+FFFD, which jsonb can store). Anything else — not UTF-8, not JSON, not an object, too
 * large, too deep — becomes `{"_bemi":{"invalidContext":"<reason>"}}` (with an excerpt of
 * malformed text), so the row changes are stored all the same. Never throws, never recurses.
 */
export function normalizeContext(content: Buffer, limits: ContextLimits = DEFAULT_CONTEXT_LIMITS): { json: string; problem?: string } {
  const invalid = (reason: string, excerpt?: string) => ({ json: invalidContextJson(reason, excerpt), problem: reason });
  if (content.length > limits.maxBytes) return invalid(`context message of ${content.length} bytes is over the ${limits.maxBytes}-byte limit`);
  let text: string;
  try {
    text = UTF8.decode(content);
  } catch {
    return invalid('context message is not valid UTF-8');
  }
  const depth = nestingDepth(text);
  if (depth > limits.maxDepth) return invalid(`context nests ${depth} levels deep, over the limit of ${limits.maxDepth}`);
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch {
    return invalid('context message is not JSON', excerptOf(text));
  }
  if (!parsed || typeof parsed !== 'object' || Array.isArray(parsed)) return invalid('context message is not a JSON object', excerptOf(text));
  return { json: jsonbSafe(text) };
}

/** The database roles a context message names: the role the session acted as, and the one that logged in. */
export interface MessageRoles {
  role: string;
  sessionRole: string;
}

/** A `_bemi` message as stored: its context JSON, and the roles it names (none in the old format). */
export interface ContextMessage {
  json: string;
  problem?: string;
  /** Undefined for the old format (the context JSON alone), which names no role. */
  roles?: MessageRoles;
}

const NEWLINE = 0x0a;
const OPEN_BRACKET = 0x5b;

/**
 * Splits a `_bemi` message: today's trigger sends `["<role>","<session role>"]`, a newline and
 * the context JSON (nothing when the statement had none); older triggers sent the context alone
 * (a JSON object never starts with `[`). A malformed role header gives the invalid-context
 * marker and no roles. Never throws.
 */
export function parseContextMessage(content: Buffer, limits: ContextLimits = DEFAULT_CONTEXT_LIMITS): ContextMessage {
  if (content[0] !== OPEN_BRACKET) return normalizeContext(content, limits);
  const split = content.indexOf(NEWLINE);
  const roles = split > 0 && split <= MAX_ROLE_HEADER_BYTES ? parseRoles(content.subarray(0, split)) : undefined;
  if (!roles) return { json: invalidContextJson('context message has no valid role header'), problem: 'context message has no valid role header' };
  const body = content.subarray(split + 1);
  return { ...(body.length === 0 ? { json: '{}' } : normalizeContext(body, limits)), roles };
}

/** Two role names of at most 63 bytes each, JSON-escaped: far below this. */
const MAX_ROLE_HEADER_BYTES = 1024;

function parseRoles(header: Buffer): MessageRoles | undefined {
  try {
    const parsed: unknown = JSON.parse(UTF8.decode(header));
    if (Array.isArray(parsed) && parsed.length >= 2 && typeof parsed[0] === 'string' && typeof parsed[1] === 'string') {
      return { role: parsed[0], sessionRole: parsed[1] };
    }
  } catch {
    // not JSON, or not UTF-8: no roles
  }
  return undefined;
}

/**
 * A context that is not believed (see ContextTrust), kept apart where no query for the real
 * actor finds it: `{"_bemi":{"untrusted":"<why>","context":<what it said>}}`.
 */
export function untrustedContextJson(json: string, reason: string): string {
  return `{"_bemi":{"untrusted":${JSON.stringify(reason)},"context":${json}}}`;
}

/**
 * `context` (a stored context: a JSON object's text) with `name: value` added to its `"_bemi"`
 * member, keeping what that member held. The rest of the text stays exactly as it was: the member
 * is appended, and jsonb keeps the last of duplicate keys.
 */
export function withContextMarker(context: string, name: string, value: string): string {
  const body = context.trim();
  let held: Record<string, unknown> = {};
  try {
    const member = (JSON.parse(body) as { _bemi?: unknown })._bemi;
    if (member && typeof member === 'object' && !Array.isArray(member)) held = member as Record<string, unknown>;
  } catch {
    // Stored contexts are JSON objects; if not, the marker alone says what is known.
    return JSON.stringify({ _bemi: { [name]: value } });
  }
  const marker = JSON.stringify({ _bemi: { ...held, [name]: value } }).slice(1, -1);
  return /^\{\s*\}$/.test(body) ? `{${marker}}` : `${body.slice(0, -1)},${marker}}`;
}

const UTF8 = new TextDecoder('utf-8', { fatal: true });

/** Deepest nesting of `{`/`[` outside strings, in one pass. */
function nestingDepth(text: string): number {
  let depth = 0;
  let max = 0;
  let inString = false;
  for (let i = 0; i < text.length; i++) {
    const ch = text.charCodeAt(i);
    if (inString) {
      if (ch === 92 /* \ */) i++;
      else if (ch === 34 /* " */) inString = false;
    } else if (ch === 34) inString = true;
    else if (ch === 123 /* { */ || ch === 91 /* [ */) {
      if (++depth > max) max = depth;
    } else if (ch === 125 /* } */ || ch === 93 /* ] */) depth--;
  }
  return max;
}

/** The start of malformed text, for whoever investigates (NUL, which jsonb cannot store, as U+FFFD). */
function excerptOf(text: string): string {
  let excerpt = text.slice(0, 200);
  // Never end on half a surrogate pair.
  if (/[\uD800-\uDBFF]$/.test(excerpt)) excerpt = excerpt.slice(0, -1);
  return excerpt.replace(/\u0000/g, '\uFFFD');
}
