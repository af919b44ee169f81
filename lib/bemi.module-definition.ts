import { ConfigurableModuleBuilder } from '@nestjs/common';
import type { BemiModuleOptions } from './options/bemi-options.interfaces';

export const {
  ConfigurableModuleClass: BemiConfigurableModule,
  MODULE_OPTIONS_TOKEN: BEMI_MODULE_OPTIONS,
  OPTIONS_TYPE: BEMI_OPTIONS_TYPE,
  ASYNC_OPTIONS_TYPE: BEMI_ASYNC_OPTIONS_TYPE,
} = new ConfigurableModuleBuilder<BemiModuleOptions>({ moduleName: 'Bemi' })
  .setClassMethodName('forRoot')
  // One context store and one ORM hook per application: the module is always global.
  .setExtras({}, (definition) => ({ ...definition, global: true }))
  .build();

/** What `BemiModule.forRootAsync()` takes: `useFactory` + `inject`, `useClass` or `useExisting`, and `imports`. */
export type BemiModuleAsyncOptions = typeof BEMI_ASYNC_OPTIONS_TYPE;
