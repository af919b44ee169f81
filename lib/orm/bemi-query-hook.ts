import { Logger } from '@nestjs/common';
import { types } from 'node:util';
import type { MikroORM } from '@mikro-orm/core';
import { DEFAULT_MAX_CONTEXT_SIZE } from '../options/defaults';
import type { BemiContextValue } from '../options/bemi-options.interfaces';
import { BemiContextStore } from '../context/bemi-context.store';
import { secretKeyMatcher } from './context-redaction';
import { contextComment, encodeContext } from './context-encoder';
import { isDataModifying } from './dml-detector';

type OnQuery = (sql: string, params: readonly unknown[]) => string;

const INSTALLED = Symbol('nestjs-bemi:onQuery');

export interface BemiQueryHookOptions {
  /** Largest encoded context in UTF-8 bytes; larger ones are not attached. Default 1 MB. */
  maxContextSize?: number;
  /** Where warnings go. Default: a Nest `Logger` named `BemiModule`. */
  logger?: Pick<Logger, 'warn'>;
  /** Store to read the context from. Default: the nestjs-cls store. */
  store?: BemiContextStore;
  /**
   * Words that make a context key secret (case-insensitive, matched inside the key, at any depth);
   * their values are sent as `"[REDACTED]"`. Default `DEFAULT_REDACTED_CONTEXT_KEYS`; false: none.
   */
  redactContextKeys?: readonly string[] | false;
}

/**
 * Wraps MikroORM's public `onQuery(sql, params)` hook so that every data-modifying statement
 * starts with `/*Bemi <json> Bemi*\/`. The user's own `onQuery` keeps running (first, so ours is
 * always the leading comment). Returns a function that restores the previous hook.
 *
 * The hook never throws: a context that cannot be encoded or is too large is left off, with a
 * warning logged once per endpoint, and the statement runs unchanged.
 */
export function installBemiQueryHook(orm: Pick<MikroORM, 'config'>, options: BemiQueryHookOptions = {}): () => void {
  const config = orm.config;
  const previous = config.get('onQuery') as OnQuery;
  if ((previous as unknown as Record<symbol, unknown>)[INSTALLED]) return () => undefined;

  const attach = createContextAttacher(options);
  const hook: OnQuery = (sql, params) => attach(previous(sql, params));
  Object.defineProperty(hook, INSTALLED, { value: true });
  config.set('onQuery', hook as never);

  return () => {
    if (config.get('onQuery') === (hook as never)) config.set('onQuery', previous as never);
  };
}

/** The pure part of the hook: given final SQL, returns it with the current context in front. */
export function createContextAttacher(options: BemiQueryHookOptions = {}): (sql: string) => string {
  const store = options.store ?? new BemiContextStore();
  const logger = options.logger ?? new Logger('BemiModule');
  const maxBytes = options.maxContextSize ?? DEFAULT_MAX_CONTEXT_SIZE;
  const isSecret = secretKeyMatcher(options.redactContextKeys);
  // The comment of a context object is reused only while nothing in it can change (see
  // isUnchangeable): the store freezes the object it keeps, but values inside it may be the
  // caller's own objects, mutable between two statements. Others are encoded per statement.
  const comments = new WeakMap<object, string | null>();
  const changeable = new WeakSet<object>(); // skips the walk next time; a wrong entry only costs an encoding
  const warned = new Set<string>();

  const warnOnce = (context: BemiContextValue, kind: 'size' | 'serialise', message: string) => {
    const endpoint = describeEndpoint(context);
    const key = `${kind} ${endpoint}`;
    if (warned.has(key)) return;
    warned.add(key);
    logger.warn(`Context for ${endpoint} ${message} The statement ran without context. (logged once per endpoint)`);
  };

  const encode = (context: BemiContextValue): string | null => {
    let text: string;
    try {
      text = encodeContext(context, isSecret);
    } catch (error) {
      warnOnce(context, 'serialise', `could not be serialised (${(error as Error)?.message ?? String(error)}).`);
      return null;
    }
    const size = Buffer.byteLength(text, 'utf8');
    if (size > maxBytes) {
      warnOnce(context, 'size', `is ${size} bytes, over maxContextSize (${maxBytes}); put less into context or raise maxContextSize.`);
      return null;
    }
    return text === '{}' ? null : contextComment(text);
  };

  return (sql: string): string => {
    try {
      const context = store.get();
      if (!context || typeof sql !== 'string' || !isDataModifying(sql)) return sql;
      let comment = comments.get(context);
      if (comment === undefined) {
        comment = encode(context);
        if (!changeable.has(context)) {
          if (isUnchangeable(context, new Set())) comments.set(context, comment);
          else changeable.add(context);
        }
      }
      return comment === null ? sql : comment + sql;
    } catch {
      return sql; // never break the user's statement
    }
  };
}

/**
 * True when encoding `value` again could never give another result: primitives, and frozen
 * plain objects and arrays of such values, with no getters, no `toJSON` and no proxy. A `Date`,
 * `Map` or `Set` stays mutable when frozen, so any of them makes the context changeable.
 */
function isUnchangeable(value: unknown, visited: Set<object>): boolean {
  // Functions are dropped by the encoder whatever they hold.
  if (value === null || typeof value !== 'object') return true;
  const obj = value as object;
  if (visited.has(obj)) return true; // its own check decides
  visited.add(obj);
  const proto = Object.getPrototypeOf(obj);
  const plain = proto === Object.prototype || proto === null || (Array.isArray(obj) && proto === Array.prototype);
  if (!plain || !Object.isFrozen(obj) || types.isProxy(obj) || typeof (obj as { toJSON?: unknown }).toJSON === 'function') return false;
  for (const key of Object.keys(obj)) {
    const descriptor = Object.getOwnPropertyDescriptor(obj, key);
    if (!descriptor || !('value' in descriptor) || !isUnchangeable(descriptor.value, visited)) return false;
  }
  return true;
}

function describeEndpoint(context: BemiContextValue): string {
  const parts = [context.method, context.endpoint ?? context.handler].filter((p) => typeof p === 'string');
  return parts.length ? `"${parts.join(' ')}"` : 'a call outside any endpoint';
}
