import type { ExecutionContext } from '@nestjs/common';
import type { BemiRules } from '../rules/rules.interfaces';
import type { TrailLocation, TrailLocationOptions } from '../trail/trail-location';
import type { BemiCaptureOptions, CheckedCaptureOptions } from './capture-options';
import type { BemiRetentionOptions, ResolvedRetentionOptions } from './retention-options';

/** A JSON-compatible context object. Values JSON cannot hold are converted (see README). */
export type BemiContextValue = Record<string, unknown>;

/**
 * Computes context from the incoming request. `req` is the transport's request-like object:
 * the HTTP request (Express or Fastify), the RPC payload, the WebSocket client, or the GraphQL
 * context; `ctx` is Nest's ExecutionContext for anything else.
 */
export type BemiContextFactory = (
  req: any,
  ctx: ExecutionContext,
) => BemiContextValue | undefined | null | Promise<BemiContextValue | undefined | null>;

export interface BemiModuleOptions {
  /**
   * Context added to every request, merged over the defaults
   * (`endpoint`, `method`, `params`, `userId`).
   */
  context?: BemiContextFactory;
  /** Collect the default request context (`endpoint`, `method`, `params`, `userId`). Default true. */
  defaultContext?: boolean;
  /**
   * Largest encoded context (UTF-8 bytes) attached to a statement. A larger context is not
   * attached (the write still runs) and a warning is logged once per endpoint. Default 1 MB.
   */
  maxContextSize?: number;
  /**
   * Attach context to the MikroORM instance provided by `@mikro-orm/nestjs` (default true).
   * Set to false when you call `installBemiQueryHook()` yourself, e.g. for several ORMs.
   */
  attachToOrm?: boolean;
  /**
   * Run the change-capture worker inside the application (streams the WAL into `changes`).
   * Off when absent. `source` defaults to the MikroORM connection. See docs/capture.md.
   */
  capture?: BemiCaptureOptions;
  /** Where `BemiHistory` reads the trail. Default: the capture schema (else `public`), table `changes`. */
  history?: TrailLocationOptions;
  /**
   * Words that make a context key secret (case-insensitive, matched inside the key, at any depth):
   * its value is sent as `"[REDACTED]"`. Default `DEFAULT_REDACTED_CONTEXT_KEYS` (password, token,
   * authorization, secret, cookie, ...); `false` masks nothing.
   */
  redactContextKeys?: string[] | false;
  /**
   * What the capture records per table and column (ignore, only, redact), merged with the entity
   * decorators `@BemiIgnore()`, `@BemiRedact()`, `@BemiOnly()`. See docs/redaction.md.
   */
  rules?: BemiRules;
  /**
   * Delete changes older than `maxAge` (per table: `perTable`), in bounded batches, every
   * `interval`. Off when absent. See docs/retention.md.
   */
  retention?: BemiRetentionOptions;
}

/**
 * The module options after validation, every default filled in: the one options object the
 * module's services read (injected as `BEMI_RESOLVED_OPTIONS`). Built once, at startup, by
 * `validateBemiOptions`.
 */
export interface BemiResolvedOptions {
  context?: BemiContextFactory;
  defaultContext: boolean;
  maxContextSize: number;
  attachToOrm: boolean;
  /** Capture options, checked and defaulted; connections may still be missing (the module supplies MikroORM's). Undefined when capture is off. */
  capture?: CheckedCaptureOptions;
  /** Where the trail lives (history, retention and health read it here). */
  trail: TrailLocation;
  redactContextKeys: readonly string[] | false;
  rules?: BemiRules;
  /** Retention options, durations in milliseconds; undefined when retention is off. */
  retention?: ResolvedRetentionOptions;
}
