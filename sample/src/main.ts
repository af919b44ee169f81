import 'reflect-metadata';
import type { INestApplication } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import { MikroORM } from '@mikro-orm/core';
import { AppModule } from './app.module';

/** Boots the sample: runs pending migrations (the Todo table, then Bemi's triggers), then listens. */
export async function bootstrap(port: number, host = '127.0.0.1'): Promise<INestApplication> {
  const app = await NestFactory.create(AppModule, { logger: ['log', 'warn', 'error'] });
  app.enableShutdownHooks();
  await migratorOf(app.get(MikroORM)).up();
  await app.listen(port, host);
  return app;
}

/** MikroORM 7 has `orm.migrator`, 6 has `orm.getMigrator()`. */
function migratorOf(orm: MikroORM): { up(): Promise<unknown> } {
  const o = orm as unknown as { migrator?: { up(): Promise<unknown> }; getMigrator(): { up(): Promise<unknown> } };
  return o.migrator ?? o.getMigrator();
}
