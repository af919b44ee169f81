import { Injectable, Logger } from '@nestjs/common';
import type { BemiContextValue } from './options/bemi-options.interfaces';
import { BemiContextStore } from './context/bemi-context.store';

/** Reads and extends the context attached to the current request's (or job's) writes. */
@Injectable()
export class BemiService {
  private readonly logger = new Logger('BemiModule');
  private warnedOutsideScope = false;

  constructor(private readonly store: BemiContextStore) {}

  /**
   * Merges `context` into the current context; later calls win over earlier ones and over
   * decorator/default values. Outside a request or `run()` there is nothing to merge into:
   * the call is ignored with a one-time warning rather than failing the caller.
   */
  set(context: BemiContextValue): void {
    if (!context || typeof context !== 'object' || Array.isArray(context)) {
      throw new TypeError('BemiService.set() takes a plain object, e.g. bemi.set({ jobId: 42 }).');
    }
    if (!this.store.isActive()) {
      if (!this.warnedOutsideScope) {
        this.warnedOutsideScope = true;
        this.logger.warn('BemiService.set() was called outside a request or bemi.run() scope and was ignored. Wrap background work in bemi.run({ ... }, () => work()).');
      }
      return;
    }
    this.store.merge(context);
  }

  /** The current context as a plain object (a copy; `{}` when there is none). */
  get(): BemiContextValue {
    return { ...this.store.get() };
  }

  /**
   * Runs `fn` with `context` for work outside a request (cron jobs, queue consumers, scripts).
   * Inside a request, the request's context is kept and `context` is merged over it.
   */
  run<T>(context: BemiContextValue, fn: () => T): T {
    if (!context || typeof context !== 'object' || Array.isArray(context)) {
      throw new TypeError('BemiService.run() takes a plain object as its first argument.');
    }
    return this.store.run(context, fn);
  }
}
