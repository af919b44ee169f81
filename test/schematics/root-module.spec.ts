import * as ts from 'typescript';
import { addBemiModuleToSource, callsEnableShutdownHooks, findRootModuleFile, readBemiRegistration } from '../../lib/schematics/root-module';
import { findMigrationsPathInSource, resolveMigrationsDirectory } from '../../lib/migration/migrations-path';

function edit(source: string) {
  const result = addBemiModuleToSource(ts, source, 'app.module.ts');
  const parsed = ts.createSourceFile('x.ts', result.content, ts.ScriptTarget.Latest, true);
  expect((parsed as unknown as { parseDiagnostics: unknown[] }).parseDiagnostics).toEqual([]);
  return result;
}

describe('addBemiModuleToSource', () => {
  it('appends to a one-line imports array and adds the import declaration after the last import', () => {
    const result = edit(`import { Module } from '@nestjs/common';\nimport { A } from './a';\n\n@Module({ imports: [A], providers: [] })\nexport class AppModule {}\n`);
    expect(result.changed).toBe(true);
    expect(result.content).toBe(
      `import { Module } from '@nestjs/common';\nimport { A } from './a';\nimport { BemiModule } from 'nestjs-bemi';\n\n@Module({ imports: [A, BemiModule.forRoot()], providers: [] })\nexport class AppModule {}\n`,
    );
  });

  it('fills an empty array, keeps a trailing-comma style, and follows the indentation', () => {
    expect(edit(`import { Module } from '@nestjs/common';\n@Module({ imports: [] })\nexport class M {}\n`).content).toContain('@Module({ imports: [BemiModule.forRoot()] })');
    const multiline = edit(`import { Module } from '@nestjs/common';\n@Module({\n    imports: [\n        A.forRoot({\n          x: 1,\n        }),\n        B,\n    ],\n})\nexport class M {}\n`);
    expect(multiline.content).toContain(`        B,\n        BemiModule.forRoot(),\n    ],`);
  });

  it('adds an imports property when the module has none, or when the metadata is empty', () => {
    expect(edit(`import { Module } from '@nestjs/common';\n@Module({\n  controllers: [C],\n})\nexport class M {}\n`).content).toContain(
      `@Module({\n  imports: [BemiModule.forRoot()],\n  controllers: [C],\n})`,
    );
    expect(edit(`import { Module } from '@nestjs/common';\n@Module({})\nexport class M {}\n`).content).toContain(`@Module({ imports: [BemiModule.forRoot()] })`);
  });

  it('follows the quote and semicolon style of the file, and extends an existing nestjs-bemi import', () => {
    expect(edit(`import { Module } from "@nestjs/common"\n@Module({})\nexport class M {}\n`).content).toContain(`import { BemiModule } from "nestjs-bemi"\n`);
    const existing = edit(`import { Module } from '@nestjs/common';\nimport { BemiService } from 'nestjs-bemi';\n@Module({ imports: [] })\nexport class M {}\n`);
    expect(existing.content).toContain(`import { BemiService, BemiModule } from 'nestjs-bemi';`);
    expect(existing.content.match(/from 'nestjs-bemi'/g)).toHaveLength(1);
  });

  it('is idempotent', () => {
    const once = edit(`import { Module } from '@nestjs/common';\n@Module({ imports: [X] })\nexport class M {}\n`);
    const twice = edit(once.content);
    expect(twice).toEqual({ content: once.content, changed: false, message: expect.stringMatching(/already imports BemiModule/) });
    const async = `import { Module } from '@nestjs/common';\nimport { BemiModule } from 'nestjs-bemi';\n@Module({ imports: [BemiModule.forRootAsync({ useFactory: () => ({}) })] })\nexport class M {}\n`;
    expect(edit(async).changed).toBe(false);
  });

  it('explains the manual step instead of guessing when imports is not an array literal, or there is no @Module', () => {
    const variable = edit(`import { Module } from '@nestjs/common';\nconst imports = [A];\n@Module({ imports })\nexport class M {}\n`);
    expect(variable).toMatchObject({ changed: false, message: expect.stringMatching(/by hand/) });
    const call = edit(`import { Module } from '@nestjs/common';\n@Module({ imports: build() })\nexport class M {}\n`);
    expect(call).toMatchObject({ changed: false, message: expect.stringMatching(/not an array literal.*by hand/) });
    expect(edit(`export class NotAModule {}\n`)).toMatchObject({ changed: false, message: expect.stringMatching(/no @Module/) });
  });
});

describe('findRootModuleFile', () => {
  const files: Record<string, string> = {
    'server/boot.ts': `import { NestFactory } from '@nestjs/core';\nimport { RootModule } from './root';\nNestFactory.createMicroservice(RootModule, {});\n`,
    'server/root/index.ts': `@Module({}) export class RootModule {}`,
    'src/app.module.ts': '',
  };
  const read = (p: string) => files[p];

  it('follows main.ts to the module passed to NestFactory', () => {
    expect(findRootModuleFile(ts, read, { sourceRoot: 'server', entryFile: 'boot' })).toBe('server/root/index.ts');
  });

  it('falls back to <sourceRoot>/app.module.ts, else undefined', () => {
    expect(findRootModuleFile(ts, read, {})).toBe('src/app.module.ts');
    expect(findRootModuleFile(ts, read, { sourceRoot: 'nowhere' })).toBeUndefined();
  });
});

describe('MikroORM migrations path lookup', () => {
  const find = (source: string, file = 'src/mikro-orm.config.ts') => findMigrationsPathInSource(ts, source, file);

  it('reads pathTs before path, string or template literal, normalised', () => {
    expect(find(`export default { migrations: { path: 'dist/m', pathTs: './src/m/' } }`)).toBe('src/m');
    expect(find('export default defineConfig({ migrations: { path: `db/migrations` } })')).toBe('db/migrations');
  });

  it('resolves join/resolve with __dirname (relative to the config file) or process.cwd()', () => {
    expect(find(`export default { migrations: { path: path.join(__dirname, '../db', 'migrations') } }`)).toBe('db/migrations');
    expect(find(`export default { migrations: { pathTs: resolve(process.cwd(), 'src/migrations') } }`)).toBe('src/migrations');
  });

  it('ignores what it cannot evaluate or what leaves the app', () => {
    expect(find(`export default { migrations: { path: process.env.MIGRATIONS } }`)).toBeUndefined();
    expect(find(`export default { migrations: { path: '/abs/migrations' } }`)).toBeUndefined();
    expect(find(`export default { migrations: { path: '../../elsewhere' } }`)).toBeUndefined();
    expect(find(`export default { dbName: 'x' }`)).toBeUndefined();
  });

  it('resolveMigrationsDirectory tries package.json configPaths, then the usual files, then <sourceRoot>/migrations', () => {
    const files: Record<string, string> = {
      'package.json': JSON.stringify({ 'mikro-orm': { configPaths: ['./cfg/orm.ts'] } }),
      'cfg/orm.ts': `export default { migrations: { path: 'cfg/migrations' } }`,
      'src/mikro-orm.config.ts': `export default { migrations: { path: 'src/other' } }`,
    };
    expect(resolveMigrationsDirectory((p) => files[p], { ts })).toEqual({ path: 'cfg/migrations', foundIn: 'cfg/orm.ts' });
    delete files['package.json'];
    expect(resolveMigrationsDirectory((p) => files[p], { ts })).toEqual({ path: 'src/other', foundIn: 'src/mikro-orm.config.ts' });
    expect(resolveMigrationsDirectory(() => undefined, { ts, sourceRoot: './apps/api/src/' })).toEqual({ path: 'apps/api/src/migrations' });
  });
});

describe('readBemiRegistration (what nest add says next)', () => {
  const module = (registration: string) => `import { Module } from '@nestjs/common';\nconst opts = {};\n@Module({ imports: [${registration}] })\nexport class M {}\n`;
  const read = (registration: string) => readBemiRegistration(ts, module(registration), 'app.module.ts');

  it.each([
    ['BemiModule.forRoot({ capture: {} })', true],
    ["BemiModule.forRoot({ context: () => ({}), 'capture': { slotName: 's' } })", true],
    ['BemiModule.forRoot({ capture })', true],
    ['BemiModule.forRoot({ ...opts, capture: { source: url } })', true],
    ['BemiModule.forRoot()', false],
    ['BemiModule.forRoot({ context: () => ({}) })', false],
    ['BemiModule.forRoot({ capture: undefined })', false],
    ['BemiModule.forRoot(opts)', undefined],
    ['BemiModule.forRoot({ ...opts })', undefined],
    ['BemiModule.forRootAsync({ useFactory: () => ({ capture: {} }) })', undefined],
  ])('%s: capture %s', (registration, capture) => {
    expect(read(registration)).toEqual({ registered: true, capture });
  });

  it('reports no registration in a module without BemiModule, and prefers one that captures', () => {
    expect(read('OtherModule.forRoot({ capture: {} })')).toEqual({ registered: false, capture: false });
    expect(read('process.env.CAPTURE ? BemiModule.forRoot({ capture: {} }) : BemiModule.forRoot()')).toEqual({ registered: true, capture: true });
  });

  it('callsEnableShutdownHooks finds the call however the app is named, and ignores comments and strings', () => {
    expect(callsEnableShutdownHooks(ts, `const app = await NestFactory.create(M);\napp.enableShutdownHooks();`, 'main.ts')).toBe(true);
    expect(callsEnableShutdownHooks(ts, `(await NestFactory.create(M)).enableShutdownHooks([Signal.SIGTERM]);`, 'main.ts')).toBe(true);
    expect(callsEnableShutdownHooks(ts, `// TODO app.enableShutdownHooks()\nconst s = 'app.enableShutdownHooks()';`, 'main.ts')).toBe(false);
  });
});
