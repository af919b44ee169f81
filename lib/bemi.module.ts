import { Inject, MiddlewareConsumer, Module, NestModule, Optional } from '@nestjs/common';
import { APP_INTERCEPTOR, HttpAdapterHost } from '@nestjs/core';
import { BEMI_RESOLVED_OPTIONS } from './options/options.constants';
import {
  BEMI_ASYNC_OPTIONS_TYPE,
  BEMI_MODULE_OPTIONS,
  BEMI_OPTIONS_TYPE,
  BemiConfigurableModule,
} from './bemi.module-definition';
import { validateBemiOptions } from './options/bemi-options.validator';
import { BemiService } from './bemi.service';
import { BemiHealthIndicator } from './health/bemi-health.indicator';
import { BemiCaptureService } from './capture/capture.service';
import { BemiContextInterceptor } from './context/bemi-context.interceptor';
import { BemiContextStore } from './context/bemi-context.store';
import { BemiHistory } from './history/bemi-history';
import { BemiScopeMiddleware } from './context/bemi-scope.middleware';
import { BemiQueryHookProvider } from './orm/bemi-query-hook.provider';
import { BemiRetentionService } from './retention/retention.service';

/**
 * Collects request context into nestjs-cls and attaches it to every MikroORM write.
 * It uses the process-wide nestjs-cls store (the same one the app's own `ClsModule.forRoot()`
 * uses, if any) and never registers ClsModule itself, so there is only ever one store.
 */
@Module({
  providers: [
    { provide: BEMI_RESOLVED_OPTIONS, useFactory: validateBemiOptions, inject: [BEMI_MODULE_OPTIONS] },
    { provide: BemiContextStore, useFactory: () => new BemiContextStore() },
    BemiService,
    BemiQueryHookProvider,
    BemiCaptureService,
    BemiHistory,
    BemiHealthIndicator,
    BemiRetentionService,
    BemiScopeMiddleware,
    { provide: APP_INTERCEPTOR, useClass: BemiContextInterceptor },
  ],
  exports: [BemiService, BemiContextStore, BemiCaptureService, BemiHistory, BemiHealthIndicator, BemiRetentionService, BEMI_RESOLVED_OPTIONS],
})
export class BemiModule extends BemiConfigurableModule implements NestModule {
  constructor(@Optional() @Inject(HttpAdapterHost) private readonly adapterHost?: HttpAdapterHost) {
    super();
  }

  static override forRoot(options: typeof BEMI_OPTIONS_TYPE = {}) {
    return super.forRoot(options);
  }

  static override forRootAsync(options: typeof BEMI_ASYNC_OPTIONS_TYPE) {
    return super.forRootAsync(options);
  }

  configure(consumer: MiddlewareConsumer): void {
    const adapter = this.adapterHost?.httpAdapter;
    if (!adapter) return;
    consumer.apply(BemiScopeMiddleware).forRoutes(catchAllRoute(adapter.getType()));
  }
}

/** A route that matches every path, in the syntax of the installed Nest major version. */
function catchAllRoute(adapterType: string): string {
  // The installed Nest's own version decides the route syntax (path-to-regexp 8 since Nest 11).
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  const major = Number(require('@nestjs/core/package.json').version.split('.')[0]);
  if (major >= 11) return adapterType === 'fastify' ? '{*path}' : '/';
  return adapterType === 'fastify' ? '(.*)' : '*';
}
