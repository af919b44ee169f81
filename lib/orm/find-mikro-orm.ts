import type { ModuleRef } from '@nestjs/core';
import { MikroORM } from '@mikro-orm/core';
import type { ClientConfig } from 'pg';

/** The application's MikroORM instance (from `@mikro-orm/nestjs`), or undefined when it has none. */
export function findMikroOrm(moduleRef: ModuleRef): MikroORM | undefined {
  try {
    return moduleRef.get(MikroORM, { strict: false }) ?? undefined;
  } catch {
    return undefined; // not registered in this application
  }
}

/**
 * A `pg` client configuration for the database MikroORM connects to (host, port, user, password,
 * database); a password given as a function (e.g. a rotating token) is resolved now.
 */
export async function ormClientConfig(orm: MikroORM): Promise<ClientConfig> {
  const c = orm.em.getConnection().getConnectionOptions() as { host?: string; port?: number; user?: string; password?: unknown; database?: string };
  let password = c.password;
  if (typeof password === 'function') password = await password();
  if (password && typeof password === 'object' && 'password' in password) password = (password as { password: string }).password;
  return { host: c.host, port: c.port, user: c.user, password: password as string | undefined, database: c.database };
}
