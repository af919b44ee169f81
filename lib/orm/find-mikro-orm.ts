import type { ModuleRef } from '@nestjs/core';
import { MikroORM } from '@mikro-orm/core';

/** The application's MikroORM instance (from `@mikro-orm/nestjs`), or undefined when it has none. */
export function findMikroOrm(moduleRef: ModuleRef): MikroORM | undefined {
  try {
    return moduleRef.get(MikroORM, { strict: false }) ?? undefined;
  } catch {
    return undefined; // not registered in this application
  }
}
