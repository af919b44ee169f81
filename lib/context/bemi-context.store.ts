import { ClsService, ClsServiceManager } from 'nestjs-cls';
import { BEMI_CONTEXT_CLS_KEY } from './context.constants';
import type { BemiContextValue } from '../options/bemi-options.interfaces';

/**
 * Where the current context lives: one key in the nestjs-cls store. The stored object is never
 * mutated, only replaced, so consumers (the ORM hook caches encodings per object) can rely on
 * identity meaning "unchanged".
 */
export class BemiContextStore {
  constructor(private readonly cls: ClsService = ClsServiceManager.getClsService()) {}

  isActive(): boolean {
    return this.cls.isActive();
  }

  get(): Readonly<BemiContextValue> | undefined {
    return this.cls.isActive() ? this.cls.get<BemiContextValue | undefined>(BEMI_CONTEXT_CLS_KEY) : undefined;
  }

  /** Merges `partial` over the current context; `under` values lose to what is already set. */
  merge(partial: BemiContextValue | undefined | null, under?: BemiContextValue): void {
    const current = this.get();
    this.cls.set(BEMI_CONTEXT_CLS_KEY, Object.freeze({ ...under, ...current, ...partial }));
  }

  /** Runs `fn` in a new scope whose context is the enclosing one (if any) merged with `context`. */
  run<T>(context: BemiContextValue, fn: () => T): T {
    const outer = this.get();
    return this.cls.run({ ifNested: 'inherit' }, () => {
      this.cls.set(BEMI_CONTEXT_CLS_KEY, Object.freeze({ ...outer, ...context }));
      return fn();
    });
  }

  /** Runs `fn` inside a fresh scope when none is active (non-HTTP transports, tests). */
  ensureScope<T>(fn: () => T): T {
    return this.cls.isActive() ? fn() : this.cls.run(fn);
  }
}
