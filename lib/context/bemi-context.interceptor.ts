import { CallHandler, ExecutionContext, Inject, Injectable, Logger, NestInterceptor } from '@nestjs/common';
import { Observable } from 'rxjs';
import { BEMI_RESOLVED_OPTIONS } from '../options/options.constants';
import type { BemiContextValue, BemiResolvedOptions } from '../options/bemi-options.interfaces';
import { BemiContextStore } from './bemi-context.store';
import { getBemiContextDefinitions, type BemiContextDefinition } from './bemi-context.decorator';
import { defaultRequestContext, transportRequest } from './request-context';

/**
 * Global interceptor: fills the context of every handled call, merged in this order (later wins):
 * defaults < `forRoot({ context })` < class `@BemiContext` < method `@BemiContext`
 * < `BemiService.set()` calls (including ones made earlier, e.g. in a guard).
 * Opens a nestjs-cls scope itself when none is active (RPC, WebSocket, GraphQL subscriptions).
 */
@Injectable()
export class BemiContextInterceptor implements NestInterceptor {
  private readonly logger = new Logger('BemiModule');

  constructor(
    @Inject(BEMI_RESOLVED_OPTIONS) private readonly options: BemiResolvedOptions,
    private readonly store: BemiContextStore,
  ) {}

  intercept(ctx: ExecutionContext, next: CallHandler): Observable<unknown> {
    return new Observable((subscriber) =>
      this.store.ensureScope(() => {
        let cancelled = false;
        let inner: { unsubscribe(): void } | undefined;
        this.collect(ctx)
          .then((context) => {
            this.store.merge(undefined, context);
            if (!cancelled) inner = next.handle().subscribe(subscriber);
          })
          .catch((error: unknown) => subscriber.error(error));
        return () => {
          cancelled = true;
          inner?.unsubscribe();
        };
      }),
    );
  }

  private async collect(ctx: ExecutionContext): Promise<BemiContextValue> {
    const layers: Array<BemiContextDefinition | undefined> = [
      this.options.context,
      ...getBemiContextDefinitions(ctx.getClass()),
      ...getBemiContextDefinitions(ctx.getHandler()),
    ];
    let context: BemiContextValue = this.options.defaultContext ? this.safeDefaults(ctx) : {};
    let req: unknown;
    for (const layer of layers) {
      if (!layer) continue;
      if (typeof layer !== 'function') {
        context = { ...context, ...layer };
        continue;
      }
      try {
        req ??= transportRequest(ctx);
        const value = await layer(req, ctx);
        if (value && typeof value === 'object') context = { ...context, ...value };
      } catch (error) {
        // A bug in a context function must not fail the request or its writes.
        this.logger.warn(`A context function threw for ${ctx.getClass()?.name}.${ctx.getHandler()?.name}: ${(error as Error)?.message ?? error}. Its part of the context was left out.`);
      }
    }
    return context;
  }

  private safeDefaults(ctx: ExecutionContext): BemiContextValue {
    try {
      return defaultRequestContext(ctx);
    } catch {
      return {};
    }
  }
}
