import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { Stack } from '../stacks/stack';

/**
 * A minimal Nest + MikroORM app as `nest new` lays it out (src/main.ts, src/app.module.ts, a
 * MikroORM config with the migrator), for the stack under test: CommonJS on the lockfile stack,
 * ESM (`"type": "module"`, nodenext) on Nest 12, as `nest new` 12 scaffolds. Without nestjs-bemi:
 * each test installs the packed package the way it tests.
 */
export interface ScratchAppOptions {
  stack: Stack;
  /** Where the MikroORM config keeps migrations, under src/ and dist/. */
  migrationsDir: string;
  /** Packages of stack.app to leave out (the test installs them its own way). */
  without?: string[];
  /** main.ts calls app.enableShutdownHooks(). */
  shutdownHooks?: boolean;
  /** Merged into package.json. */
  packageJson?: Record<string, unknown>;
}

export async function writeScratchApp(dir: string, options: ScratchAppOptions): Promise<void> {
  const esm = options.stack.name === 'next';
  const rel = (path: string) => (esm ? `${path}.js` : path);
  const dependencies = Object.fromEntries(Object.entries(options.stack.app).filter(([name]) => !(options.without ?? []).includes(name)));
  await mkdir(join(dir, 'src'), { recursive: true });
  await writeFile(
    join(dir, 'package.json'),
    JSON.stringify({ name: 'scratch-app', private: true, ...(esm ? { type: 'module' } : {}), dependencies, devDependencies: options.stack.tools, ...options.packageJson }, null, 2),
  );
  await writeFile(join(dir, 'nest-cli.json'), JSON.stringify({ collection: '@nestjs/schematics', sourceRoot: 'src' }, null, 2));
  await writeFile(
    join(dir, 'tsconfig.json'),
    JSON.stringify(
      {
        compilerOptions: {
          ...(esm ? { module: 'nodenext', moduleResolution: 'nodenext' } : { module: 'commonjs' }),
          target: 'ES2022',
          declaration: false,
          emitDecoratorMetadata: true,
          experimentalDecorators: true,
          esModuleInterop: true,
          strict: true,
          noImplicitOverride: true,
          skipLibCheck: true,
          outDir: './dist',
          rootDir: './src',
          types: ['node'],
        },
        include: ['src'],
      },
      null,
      2,
    ),
  );
  await writeFile(
    join(dir, 'src', 'main.ts'),
    `import 'reflect-metadata';
import { NestFactory } from '@nestjs/core';
import { AppModule } from '${rel('./app.module')}';

async function bootstrap(): Promise<void> {
  const app = await NestFactory.create(AppModule);
${options.shutdownHooks ? '  app.enableShutdownHooks();\n' : ''}  await app.listen(3000);
}
void bootstrap();
`,
  );
  await writeFile(
    join(dir, 'src', 'app.module.ts'),
    `import { Module } from '@nestjs/common';
import { MikroOrmModule } from '@mikro-orm/nestjs';
import config from '${rel('./mikro-orm.config')}';

@Module({
  imports: [MikroOrmModule.forRoot(config)],
})
export class AppModule {}
`,
  );
  await writeFile(
    join(dir, 'src', 'mikro-orm.config.ts'),
    `import { defineConfig } from '@mikro-orm/postgresql';
import { Migrator } from '@mikro-orm/migrations';

export default defineConfig({
  clientUrl: process.env.DATABASE_URL,
  entities: [],
  discovery: { warnWhenNoEntities: false },
  extensions: [Migrator],
  migrations: { path: 'dist/${options.migrationsDir}', pathTs: 'src/${options.migrationsDir}' },
});
`,
  );
}
