import { Inject, Injectable, OnModuleDestroy, OnModuleInit } from '@nestjs/common';
import { ModuleRef } from '@nestjs/core';
import { BEMI_RESOLVED_OPTIONS } from '../options/options.constants';
import type { BemiResolvedOptions } from '../options/bemi-options.interfaces';
import { BemiContextStore } from '../context/bemi-context.store';
import { installBemiQueryHook } from './bemi-query-hook';
import { findMikroOrm } from './find-mikro-orm';

/** Installs the context hook on the app's MikroORM instance at startup, removes it on shutdown. */
@Injectable()
export class BemiQueryHookProvider implements OnModuleInit, OnModuleDestroy {
  private uninstall?: () => void;

  constructor(
    @Inject(BEMI_RESOLVED_OPTIONS) private readonly options: BemiResolvedOptions,
    private readonly store: BemiContextStore,
    private readonly moduleRef: ModuleRef,
  ) {}

  onModuleInit(): void {
    if (!this.options.attachToOrm) return;
    const orm = findMikroOrm(this.moduleRef);
    if (!orm) {
      throw new Error(
        'BemiModule found no MikroORM instance to attach context to. Import MikroOrmModule.forRoot() from @mikro-orm/nestjs ' +
          'in the same application, or set BemiModule.forRoot({ attachToOrm: false }) and call installBemiQueryHook(orm) yourself.',
      );
    }
    this.uninstall = installBemiQueryHook(orm, {
      maxContextSize: this.options.maxContextSize,
      store: this.store,
      redactContextKeys: this.options.redactContextKeys,
    });
  }

  onModuleDestroy(): void {
    this.uninstall?.();
    this.uninstall = undefined;
  }
}
