import { logging } from '@angular-devkit/core';
import { HostTree, SchematicsException } from '@angular-devkit/schematics';
import { SchematicTestRunner, UnitTestTree } from '@angular-devkit/schematics/testing';
import { NodeWorkflow } from '@angular-devkit/schematics/tools';
import { existsSync, readdirSync } from 'node:fs';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { bemiMigrationSql } from '../../lib/migration/bemi-migration-sql';
import { loadMigration, stagePackage, StagedPackage } from './support';

const APP_MODULE = `import { Module } from '@nestjs/common';
import { MikroOrmModule } from '@mikro-orm/nestjs';
import { AppController } from './app.controller';

@Module({
  imports: [
    MikroOrmModule.forRoot(),
  ],
  controllers: [AppController],
})
export class AppModule {}
`;

const MAIN = `import { NestFactory } from '@nestjs/core';
import { AppModule } from './app.module';

async function bootstrap() {
  const app = await NestFactory.create(AppModule);
  await app.listen(3000);
}
void bootstrap();
`;

function appTree(files: Record<string, string> = {}): UnitTestTree {
  const tree = new UnitTestTree(new HostTree());
  const all = { 'package.json': '{"name":"app"}', 'src/main.ts': MAIN, 'src/app.module.ts': APP_MODULE, ...files };
  for (const [path, content] of Object.entries(all)) tree.create(path, content);
  return tree;
}

function migrationsIn(tree: UnitTestTree): string[] {
  return tree.files.filter((f) => /\/Migration\d{14}_\w+\.ts$/.test(f));
}

describe('schematics collection (from the package as published)', () => {
  let pkg: StagedPackage;
  let runner: SchematicTestRunner;

  beforeAll(async () => {
    pkg = await stagePackage();
    runner = new SchematicTestRunner('nestjs-bemi', join(pkg.dir, 'schematics', 'collection.json'));
  }, 120_000);

  afterAll(() => pkg?.remove());

  it('lists migration and nest-add, and extends @nestjs/schematics', () => {
    const names = runner.engine.createCollection('nestjs-bemi').listSchematicNames();
    expect(names).toEqual(expect.arrayContaining(['migration', 'nest-add', 'controller', 'module']));
  });

  it('keeps the @nestjs/schematics generators working through the collection (nest g controller)', async () => {
    const tree = await runner.runSchematic('controller', { name: 'cats', sourceRoot: 'src', skipImport: true, spec: false }, appTree());
    expect(tree.files).toContain('/src/cats/cats.controller.ts');
  });

  describe('migration', () => {
    it('writes src/migrations/Migration<timestamp>_bemi.ts when the app has no MikroORM migrations path', async () => {
      const before = new Date();
      const tree = await runner.runSchematic('migration', {}, appTree());
      const [file] = migrationsIn(tree);
      expect(migrationsIn(tree)).toHaveLength(1);
      const match = /^\/src\/migrations\/Migration(\d{14})_bemi\.ts$/.exec(file);
      expect(match).not.toBeNull();
      const stamp = match![1];
      const asDate = new Date(`${stamp.slice(0, 4)}-${stamp.slice(4, 6)}-${stamp.slice(6, 8)}T${stamp.slice(8, 10)}:${stamp.slice(10, 12)}:${stamp.slice(12, 14)}Z`);
      expect(asDate.getTime()).toBeGreaterThanOrEqual(Math.floor(before.getTime() / 1000) * 1000);
      expect(asDate.getTime()).toBeLessThanOrEqual(Date.now());
      const loaded = await loadMigration(tree.readText(file));
      const expected = bemiMigrationSql({ schemas: ['public'], replicaIdentityFull: true });
      expect(loaded.up).toEqual([expected.up]);
      expect(loaded.down).toEqual([expected.down]);
      expect(loaded.className).toBe(file.replace(/^.*\/|\.ts$/g, ''));
    });

    it('uses migrations.pathTs of src/mikro-orm.config.ts over migrations.path', async () => {
      const config = `import { defineConfig } from '@mikro-orm/postgresql';
export default defineConfig({
  dbName: 'app',
  migrations: { path: 'dist/db/migrations', pathTs: './src/db/migrations', fileName: (ts: string, name?: string) => { return 'x'; } },
});`;
      const tree = await runner.runSchematic('migration', {}, appTree({ 'src/mikro-orm.config.ts': config }));
      expect(migrationsIn(tree)[0]).toMatch(/^\/src\/db\/migrations\/Migration\d{14}_bemi\.ts$/);
    });

    it('understands join(__dirname, ...) and the config inlined in the root module', async () => {
      const appModule = APP_MODULE.replace(
        'MikroOrmModule.forRoot()',
        `MikroOrmModule.forRoot({ migrations: { path: join(__dirname, 'database', 'migrations') } })`,
      );
      const tree = await runner.runSchematic('migration', {}, appTree({ 'src/app.module.ts': appModule }));
      expect(migrationsIn(tree)[0]).toMatch(/^\/src\/database\/migrations\/Migration\d{14}_bemi\.ts$/);
    });

    it('reads the config files named in package.json "mikro-orm".configPaths', async () => {
      const tree = await runner.runSchematic(
        'migration',
        {},
        appTree({
          'package.json': JSON.stringify({ name: 'app', 'mikro-orm': { configPaths: ['./config/orm.ts', './dist/config/orm.js'] } }),
          'config/orm.ts': `export default { migrations: { path: 'database/migrations' } };`,
        }),
      );
      expect(migrationsIn(tree)[0]).toMatch(/^\/database\/migrations\/Migration\d{14}_bemi\.ts$/);
    });

    it('falls back to <sourceRoot>/migrations with the sourceRoot the Nest CLI passes or nest-cli.json sets', async () => {
      let tree = await runner.runSchematic('migration', { sourceRoot: 'apps/api/src' }, appTree());
      expect(migrationsIn(tree)[0]).toMatch(/^\/apps\/api\/src\/migrations\//);
      tree = await runner.runSchematic('migration', {}, appTree({ 'nest-cli.json': '{"sourceRoot":"server"}' }));
      expect(migrationsIn(tree)[0]).toMatch(/^\/server\/migrations\//);
    });

    it('--path wins over everything', async () => {
      const tree = await runner.runSchematic('migration', { path: './db/m/' }, appTree({ 'src/mikro-orm.config.ts': `export default { migrations: { pathTs: 'src/other' } };` }));
      expect(migrationsIn(tree)[0]).toMatch(/^\/db\/m\/Migration\d{14}_bemi\.ts$/);
    });

    it('passes --schemas and --replica-identity-full=false into the SQL', async () => {
      const tree = await runner.runSchematic('migration', { schemas: 'public, audit', replicaIdentityFull: false }, appTree());
      const loaded = await loadMigration(tree.readText(migrationsIn(tree)[0]));
      const expected = bemiMigrationSql({ schemas: ['public', 'audit'], replicaIdentityFull: false });
      expect(loaded.up).toEqual([expected.up]);
      expect(loaded.down).toEqual([expected.down]);
    });

    it('accepts the extra options the Nest CLI passes (its schema does not forbid unknown properties)', async () => {
      const tree = await runner.runSchematic(
        'migration',
        { replicaIdentityFull: false, name: 'audit-triggers', spec: true, flat: false, language: 'ts', collection: 'nestjs-bemi', skipImport: false },
        appTree(),
      );
      const [file] = migrationsIn(tree);
      expect(file).toMatch(/_audit_triggers\.ts$/);
      expect((await loadMigration(tree.readText(file))).up).toEqual([bemiMigrationSql({ replicaIdentityFull: false }).up]);
    });

    describe('when the directory has a trigger migration already', () => {
      const EXISTING = 'src/migrations/Migration20240101000000_bemi.ts';

      it('fails naming the file and --force, and writes nothing (nest g then exits non-zero)', async () => {
        const tree = appTree({ [EXISTING]: '// the first one' });
        const error = await runner.runSchematic('migration', {}, tree).then(
          () => undefined,
          (e: Error) => e,
        );
        expect(error).toBeInstanceOf(SchematicsException);
        expect(error!.message).toContain(`nestjs-bemi: ${EXISTING} exists already, so no second trigger migration was written.`);
        expect(error!.message).toMatch(/--force/);
        expect(migrationsIn(tree)).toEqual([`/${EXISTING}`]);
      });

      it('counts any Migration*_bemi.ts for the default name, also under the name bemi given explicitly', async () => {
        const renamed = 'src/migrations/Migration_2024_bemi.ts';
        await expect(runner.runSchematic('migration', {}, appTree({ [renamed]: '' }))).rejects.toThrow(`${renamed} exists already`);
        await expect(runner.runSchematic('migration', { name: 'bemi' }, appTree({ [EXISTING]: '' }))).rejects.toThrow(/exists already/);
      });

      it('writes a second one with force: true', async () => {
        const tree = await runner.runSchematic('migration', { force: true }, appTree({ [EXISTING]: '' }));
        expect(migrationsIn(tree)).toEqual([`/${EXISTING}`, expect.stringMatching(/^\/src\/migrations\/Migration\d{14}_bemi\.ts$/)]);
      });

      it('reads --force from the command line, where the schematics CLI keeps it for itself', async () => {
        const argv = process.argv;
        process.argv = [...argv, '--force'];
        try {
          const tree = await runner.runSchematic('migration', {}, appTree({ [EXISTING]: '' }));
          expect(migrationsIn(tree)).toHaveLength(2);
        } finally {
          process.argv = argv;
        }
      });

      it('another --name is a migration of its own: only the same name counts', async () => {
        const tree = await runner.runSchematic('migration', { name: 'audit' }, appTree({ [EXISTING]: '' }));
        expect(migrationsIn(tree)).toEqual([`/${EXISTING}`, expect.stringMatching(/_audit\.ts$/)]);
        await expect(runner.runSchematic('migration', { name: 'audit' }, tree)).rejects.toThrow(/Migration\d{14}_audit\.ts exists already/);
        // a different suffix that merely ends the same way is not the same name
        const other = await runner.runSchematic('migration', { name: 'audit' }, appTree({ 'src/migrations/Migration20240101000000_more_audit.ts': '' }));
        expect(migrationsIn(other)).toHaveLength(2);
      });

      it('a migration in another directory does not count', async () => {
        const tree = await runner.runSchematic('migration', { path: 'db/other' }, appTree({ [EXISTING]: '' }));
        expect(migrationsIn(tree)).toHaveLength(2);
      });
    });

    it('fails with the reason on an empty schema list', async () => {
      await expect(runner.runSchematic('migration', { schemas: ' , ' }, appTree())).rejects.toThrow(/at least one schema/);
    });
  });

  describe('nest-add (nest add nestjs-bemi)', () => {
    it('imports BemiModule.forRoot() in the root module and creates the migration', async () => {
      const tree = await runner.runSchematic('nest-add', { sourceRoot: 'src' }, appTree());
      expect(tree.readText('src/app.module.ts')).toBe(`import { Module } from '@nestjs/common';
import { MikroOrmModule } from '@mikro-orm/nestjs';
import { AppController } from './app.controller';
import { BemiModule } from 'nestjs-bemi';

@Module({
  imports: [
    MikroOrmModule.forRoot(),
    BemiModule.forRoot(),
  ],
  controllers: [AppController],
})
export class AppModule {}
`);
      expect(migrationsIn(tree)).toHaveLength(1);
    });

    it('is idempotent: a second run changes nothing', async () => {
      const once = await runner.runSchematic('nest-add', {}, appTree());
      const snapshot = new Map(once.files.map((f) => [f, once.readText(f)]));
      const twice = await runner.runSchematic('nest-add', {}, once);
      expect(new Map(twice.files.map((f) => [f, twice.readText(f)]))).toEqual(snapshot);
    });

    it('is reachable as ng-add too', async () => {
      const tree = await runner.runSchematic('ng-add', {}, appTree());
      expect(tree.readText('src/app.module.ts')).toContain('BemiModule.forRoot()');
    });

    it('finds the root module through main.ts, and honours --skip-migration / --skip-module', async () => {
      const main = MAIN.replace(`import { AppModule } from './app.module';`, `import { AppModule } from './core/root.module';`);
      const files = { 'src/main.ts': main, 'src/core/root.module.ts': APP_MODULE.replace('AppController', 'Other') };
      const tree = await runner.runSchematic('nest-add', { skipMigration: true }, appTree(files));
      expect(tree.readText('src/core/root.module.ts')).toContain('BemiModule.forRoot()');
      expect(tree.readText('src/app.module.ts')).toBe(APP_MODULE);
      expect(migrationsIn(tree)).toEqual([]);

      const onlyMigration = await runner.runSchematic('nest-add', { skipModule: true }, appTree());
      expect(onlyMigration.readText('src/app.module.ts')).toBe(APP_MODULE);
      expect(migrationsIn(onlyMigration)).toHaveLength(1);
    });

    describe('next steps', () => {
      async function nextStepsOf(files: Record<string, string>, options: Record<string, unknown> = {}): Promise<string> {
        const logs: string[] = [];
        const subscription = runner.logger.subscribe((entry) => logs.push(entry.message));
        try {
          await runner.runSchematic('nest-add', options, appTree(files));
        } finally {
          subscription.unsubscribe();
        }
        return logs.slice(logs.indexOf('Next steps:')).join('\n');
      }
      const withCapture = APP_MODULE.replace('MikroOrmModule.forRoot(),', `MikroOrmModule.forRoot(),\n    BemiModule.forRoot({ context: () => ({}), capture: { slotName: 'app' } }),`).replace(
        "import { AppController } from './app.controller';",
        "import { AppController } from './app.controller';\nimport { BemiModule } from 'nestjs-bemi';",
      );
      const MAIN_WITH_HOOKS = MAIN.replace('  await app.listen(3000);', '  app.enableShutdownHooks();\n  await app.listen(3000);');

      it('without capture in forRoot(): the capture bin, and the in-app capture option with shutdown hooks', async () => {
        const steps = await nextStepsOf({});
        expect(steps).toMatch(/npx mikro-orm migration:up/);
        expect(steps).toMatch(/3\. Record the changes: npx nestjs-bemi capture --database-url <database url>/);
        expect(steps).toContain('or in the app: BemiModule.forRoot({ capture: {} }), and call app.enableShutdownHooks() in main.ts');
      });

      it('without capture, main.ts with enableShutdownHooks(): the in-app option without the reminder', async () => {
        const steps = await nextStepsOf({ 'src/main.ts': MAIN_WITH_HOOKS });
        expect(steps).toContain('or in the app: BemiModule.forRoot({ capture: {} }).');
        expect(steps).not.toMatch(/enableShutdownHooks/);
      });

      it('with capture in forRoot(): capture runs in the app, and main.ts needs enableShutdownHooks()', async () => {
        const steps = await nextStepsOf({ 'src/app.module.ts': withCapture });
        expect(steps).toMatch(/3\. Changes are recorded in the app/);
        expect(steps).toMatch(/4\. Call app\.enableShutdownHooks\(\) in main\.ts/);
        expect(steps).not.toMatch(/npx nestjs-bemi capture/);
      });

      it('with capture in forRoot() and enableShutdownHooks() in main.ts: no reminder', async () => {
        const steps = await nextStepsOf({ 'src/app.module.ts': withCapture, 'src/main.ts': MAIN_WITH_HOOKS });
        expect(steps).toMatch(/Changes are recorded in the app/);
        expect(steps).not.toMatch(/enableShutdownHooks|npx nestjs-bemi capture/);
      });

      it('reads the module also with --skip-module, and the entry file nest-cli.json names', async () => {
        const files = { 'nest-cli.json': '{"sourceRoot":"server","entryFile":"boot"}', 'server/boot.ts': MAIN_WITH_HOOKS, 'server/app.module.ts': withCapture };
        const steps = await nextStepsOf(files, { skipModule: true });
        expect(steps).toMatch(/Changes are recorded in the app/);
        expect(steps).not.toMatch(/enableShutdownHooks/);
      });
    });

    it('warns and still creates the migration when there is no root module to edit', async () => {
      const logs: string[] = [];
      const tree = new UnitTestTree(new HostTree());
      tree.create('package.json', '{}');
      runner.logger.subscribe((entry) => logs.push(`${entry.level}: ${entry.message}`));
      const result = await runner.runSchematic('nest-add', {}, tree);
      expect(logs.join('\n')).toMatch(/warn: nestjs-bemi: root module not found/);
      expect(logs.join('\n')).toMatch(/npx mikro-orm migration:up/);
      expect(logs.join('\n')).toMatch(/npx nestjs-bemi capture --database-url/);
      expect(migrationsIn(result)).toHaveLength(1);
    });
  });

  describe('dry run (the workflow the schematics CLI and the Nest CLI use)', () => {
    let app: string;

    beforeEach(async () => {
      app = await mkdtemp(join(tmpdir(), 'nestjs-bemi-app-'));
      await mkdir(join(app, 'src'));
      await writeFile(join(app, 'package.json'), '{"name":"app"}');
      await writeFile(join(app, 'src', 'app.module.ts'), APP_MODULE);
    });

    afterEach(() => rm(app, { recursive: true, force: true }));

    async function runInWorkflow(schematic: string, dryRun: boolean): Promise<string[]> {
      const workflow = new NodeWorkflow(app, { dryRun, resolvePaths: [pkg.dir] });
      const events: string[] = [];
      workflow.reporter.subscribe((event) => events.push(`${event.kind} ${event.path}`));
      await new Promise<void>((resolve, reject) => {
        workflow
          .execute({ collection: join(pkg.dir, 'schematics', 'collection.json'), schematic, options: {}, logger: new logging.NullLogger() })
          .subscribe({ error: reject, complete: resolve });
      });
      return events;
    }

    it('reports the file but writes nothing', async () => {
      const events = await runInWorkflow('migration', true);
      expect(events).toEqual([expect.stringMatching(/^create \/src\/migrations\/Migration\d{14}_bemi\.ts$/)]);
      expect(existsSync(join(app, 'src', 'migrations'))).toBe(false);
    });

    it('fails without writing when a trigger migration exists (what nest g and the schematics CLI report)', async () => {
      await mkdir(join(app, 'src', 'migrations'));
      await writeFile(join(app, 'src', 'migrations', 'Migration20240101000000_bemi.ts'), '');
      await expect(runInWorkflow('migration', false)).rejects.toThrow(/src\/migrations\/Migration20240101000000_bemi\.ts exists already/);
      expect(readdirSync(join(app, 'src', 'migrations'))).toEqual(['Migration20240101000000_bemi.ts']);
    });

    it('writes the file without dry run (so the dry-run check above is meaningful)', async () => {
      await runInWorkflow('nest-add', false);
      expect(readdirSync(join(app, 'src', 'migrations'))).toEqual([expect.stringMatching(/^Migration\d{14}_bemi\.ts$/)]);
    });
  });
});
