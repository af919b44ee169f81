import { HostTree } from '@angular-devkit/schematics';
import { SchematicTestRunner, UnitTestTree } from '@angular-devkit/schematics/testing';
import { execFile } from 'node:child_process';
import { chmod, mkdir, mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { runCli } from '../../lib/cli/main';
import { parseMigrationCreateArgs } from '../../lib/cli/commands/migration-create.command';
import { bemiMigrationSql, DEFAULT_REPLICA_IDENTITY_FULL } from '../../lib/migration/bemi-migration-sql';
import { renderBemiMigrationFile } from '../../lib/migration/migration-file';
import { loadMigration, stagePackage, StagedPackage } from '../schematics/support';

interface Result {
  code: number;
  stdout: string;
  stderr: string;
}

async function cli(cwd: string, ...argv: string[]): Promise<Result> {
  let stdout = '';
  let stderr = '';
  const code = await runCli(argv, { cwd, out: (t) => (stdout += t.endsWith('\n') ? t : `${t}\n`), err: (t) => (stderr += t.endsWith('\n') ? t : `${t}\n`) });
  return { code, stdout, stderr };
}

/** The part of a generated file below its header, with the timestamp of its class name blanked. */
function body(content: string): string {
  return content.slice(content.indexOf('\nimport ')).replace(/Migration\d{14}_/, 'Migration<ts>_');
}

describe('nestjs-bemi bin', () => {
  let cwd: string;

  beforeEach(async () => {
    cwd = await mkdtemp(join(tmpdir(), 'nestjs-bemi-cli-'));
  });

  afterEach(() => rm(cwd, { recursive: true, force: true }));

  describe('help and bad arguments', () => {
    it('--help lists the commands; a command --help gives its options; both exit 0', async () => {
      const top = await cli(cwd, '--help');
      expect(top).toMatchObject({ code: 0, stderr: '' });
      expect(top.stdout).toMatch(/Usage: nestjs-bemi <command>/);
      expect(top.stdout).toMatch(/migration:create\s+Write a MikroORM migration/);
      const sub = await cli(cwd, 'migration:create', '--help');
      expect(sub).toMatchObject({ code: 0, stderr: '' });
      for (const option of ['--path', '--schemas', '--no-replica-identity-full', '--dry-run', '--force']) expect(sub.stdout).toContain(option);
      expect(await readdir(cwd)).toEqual([]);
    });

    it('prints the version of the package', async () => {
      const { version } = JSON.parse(await readFile(join(__dirname, '..', '..', 'package.json'), 'utf8'));
      expect(await cli(cwd, '--version')).toEqual({ code: 0, stdout: `${version}\n`, stderr: '' });
    });

    it.each([
      [[], /^Usage: nestjs-bemi/],
      [['migration:make'], /^nestjs-bemi: unknown command "migration:make" \(commands: migration:create, capture, capture:drop-slot, prune, trail:roles, trail:guard, verify; see nestjs-bemi --help\)\n$/],
      [['migration:create', '--bogus'], /^nestjs-bemi migration:create: unknown option --bogus\n$/],
      [['migration:create', '--path'], /^nestjs-bemi migration:create: --path <value> argument missing\n$/],
      [['migration:create', 'src/migrations'], /^nestjs-bemi migration:create: unexpected argument "src\/migrations" \(options take the form --name value\)\n$/],
      [['migration:create', '--schemas', ' , '], /^nestjs-bemi migration:create: --schemas: give at least one schema name/],
      [['migration:create', '--schemas', 'x'.repeat(64)], /longer than PostgreSQL's 63-character limit/],
      [['migration:create', '--replica-identity-full', '--no-replica-identity-full'], /contradict each other\n$/],
      [['migration:create', '--path', ' '], /--path needs a non-empty value\n$/],
    ])('%j exits 2 with a one-line reason and writes nothing', async (argv, reason) => {
      const result = await cli(cwd, ...argv);
      expect(result.code).toBe(2);
      expect(result.stdout).toBe('');
      expect(result.stderr).toMatch(reason);
      if (argv.length) expect(result.stderr.trimEnd().split('\n')).toHaveLength(1);
      expect(await readdir(cwd)).toEqual([]);
    });

    it('exits 1 with a one-line reason when the directory cannot be written', async () => {
      await writeFile(join(cwd, 'a-file'), '');
      const underFile = await cli(cwd, 'migration:create', '--path', 'a-file/migrations');
      expect(underFile.code).toBe(1);
      expect(underFile.stderr).toMatch(/^nestjs-bemi migration:create: cannot write a-file\/migrations\/Migration\d{14}_bemi\.ts: ENOTDIR[^\n]*\n$/);
      if (process.getuid?.() !== 0) {
        // root may write anywhere, so only an ordinary user can see a permission error
        await mkdir(join(cwd, 'locked'));
        await chmod(join(cwd, 'locked'), 0o500);
        expect((await cli(cwd, 'migration:create', '--path', 'locked')).stderr).toMatch(/EACCES/);
      }
    });
  });

  describe('migration:create', () => {
    it('writes <path>/Migration<timestamp>_bemi.ts with the SQL of bemiMigrationSql() for the given options', async () => {
      const result = await cli(cwd, 'migration:create', '--path', 'db/migrations', '--schemas', 'public,audit', '--no-replica-identity-full');
      expect(result.code).toBe(0);
      const [file] = await readdir(join(cwd, 'db', 'migrations'));
      expect(file).toMatch(/^Migration\d{14}_bemi\.ts$/);
      expect(result.stdout).toContain(`Created db/migrations/${file}.`);
      expect(result.stdout).toMatch(/npx mikro-orm migration:up/);
      expect(result.stdout).toMatch(/npx nestjs-bemi capture --database-url/);
      const loaded = await loadMigration(await readFile(join(cwd, 'db', 'migrations', file), 'utf8'));
      const expected = bemiMigrationSql({ schemas: ['public', 'audit'], replicaIdentityFull: false });
      expect(loaded).toEqual({ className: file.replace('.ts', ''), up: [expected.up], down: [expected.down] });
    });

    it('defaults to the migrations path of the MikroORM config, else <nest-cli sourceRoot>/migrations, with REPLICA IDENTITY FULL', async () => {
      await writeFile(join(cwd, 'nest-cli.json'), JSON.stringify({ sourceRoot: 'server' }));
      let result = await cli(cwd, 'migration:create');
      expect(result.stdout).toMatch(/^Created server\/migrations\/Migration\d{14}_bemi\.ts \(default; no MikroORM migrations path found\)\./);
      await mkdir(join(cwd, 'src'));
      await writeFile(join(cwd, 'src', 'mikro-orm.config.ts'), `export default { migrations: { pathTs: 'src/database/migrations' } };`);
      result = await cli(cwd, 'migration:create');
      expect(result.stderr).toBe('');
      expect(result.stdout).toMatch(/^Created src\/database\/migrations\/Migration\d{14}_bemi\.ts \(the migrations path of src\/mikro-orm\.config\.ts\)\./);
      const [file] = await readdir(join(cwd, 'src', 'database', 'migrations'));
      const loaded = await loadMigration(await readFile(join(cwd, 'src', 'database', 'migrations', file), 'utf8'));
      expect(loaded.up).toEqual([bemiMigrationSql({ replicaIdentityFull: true }).up]);
    });

    describe('when the directory has a trigger migration already', () => {
      const existing = 'Migration20240101000000_bemi.ts';

      beforeEach(async () => {
        await mkdir(join(cwd, 'm'));
        await writeFile(join(cwd, 'm', existing), '// the first one');
      });

      it.each([[[]], [['--dry-run']], [['--name', 'bemi']]])('%j refuses with exit 1, naming the file and --force, and writes nothing', async (args) => {
        const result = await cli(cwd, 'migration:create', '--path', 'm', ...args);
        expect(result).toMatchObject({ code: 1, stdout: '' });
        expect(result.stderr).toBe(
          `nestjs-bemi migration:create: m/${existing} exists already, so no second trigger migration was written (pass --force to write one anyway, or --name <other> for a migration of its own)\n`,
        );
        expect(await readdir(join(cwd, 'm'))).toEqual([existing]);
      });

      it('--force writes a second one', async () => {
        const result = await cli(cwd, 'migration:create', '--path', 'm', '--force');
        expect(result.code).toBe(0);
        expect((await readdir(join(cwd, 'm'))).sort()).toEqual([existing, expect.stringMatching(/^Migration\d{14}_bemi\.ts$/)].sort());
      });

      it('--name <other> is a migration of its own; a second one of that name is refused', async () => {
        expect((await cli(cwd, 'migration:create', '--path', 'm', '--name', 'audit')).code).toBe(0);
        const again = await cli(cwd, 'migration:create', '--path', 'm', '--name', 'audit');
        expect(again.code).toBe(1);
        expect(again.stderr).toMatch(/^nestjs-bemi migration:create: m\/Migration\d{14}_audit\.ts exists already/);
        expect(await readdir(join(cwd, 'm'))).toHaveLength(2);
      });
    });

    it('--dry-run prints the file and writes nothing', async () => {
      const result = await cli(cwd, 'migration:create', '--dry-run', '--name', 'audit');
      expect(result.code).toBe(0);
      expect(result.stdout).toMatch(/^Would create src\/migrations\/Migration\d{14}_audit\.ts/);
      expect(result.stdout).toContain('export class Migration');
      expect(await readdir(cwd)).toEqual([]);
    });
  });

  describe('as installed (compiled bin, compared with the schematic)', () => {
    let pkg: StagedPackage;

    beforeAll(async () => {
      pkg = await stagePackage();
    }, 120_000);

    afterAll(() => pkg?.remove());

    function bin(args: string[]): Promise<Result> {
      return new Promise((resolve) => {
        execFile(process.execPath, [join(pkg.dir, 'dist', 'cli', 'main.js'), ...args], { cwd }, (error, stdout, stderr) => {
          resolve({ code: error ? Number(error.code) : 0, stdout, stderr });
        });
      });
    }

    it('delegates capture and capture:drop-slot to the capture commands, loaded on demand', async () => {
      const help = await bin(['--help']);
      expect(help.stdout).toMatch(/^  capture {2,}\S/m);
      expect(help.stdout).toMatch(/^  capture:drop-slot {2,}\S/m);
      expect(await bin(['capture', '--help'])).toMatchObject({ code: 0, stdout: expect.stringMatching(/^Usage: nestjs-bemi capture /) });
      expect(await bin(['capture:drop-slot', '--help'])).toMatchObject({ code: 0, stdout: expect.stringMatching(/^Usage: nestjs-bemi capture:drop-slot /) });
      expect(await bin(['capture', '--bogus'])).toMatchObject({ code: 2 });
    });

    it('starts with a shebang and exits with the command exit code', async () => {
      expect((await readFile(join(pkg.dir, 'dist', 'cli', 'main.js'), 'utf8')).startsWith('#!/usr/bin/env node\n')).toBe(true);
      expect(await bin(['nope'])).toMatchObject({ code: 2, stdout: '', stderr: expect.stringMatching(/^nestjs-bemi: unknown command "nope"[^\n]*\n$/) });
      expect(await bin(['--help'])).toMatchObject({ code: 0, stderr: '' });
    });

    it('one default for replicaIdentityFull (true): bemiMigrationSql(), the rendered file, the bin, both schematics', async () => {
      expect(DEFAULT_REPLICA_IDENTITY_FULL).toBe(true);
      const full = bemiMigrationSql({ replicaIdentityFull: true });
      expect(bemiMigrationSql()).toEqual(full);
      expect(full.up).toContain('REPLICA IDENTITY FULL');
      const rendered = renderBemiMigrationFile();
      expect([rendered.up, rendered.down]).toEqual([full.up, full.down]);
      expect(rendered.content).toContain('REPLICA IDENTITY FULL: yes.');
      expect(parseMigrationCreateArgs([]).replicaIdentityFull).toBe(true);

      expect(await bin(['migration:create', '--path', 'm'])).toMatchObject({ code: 0 });
      const [file] = await readdir(join(cwd, 'm'));
      expect(await loadMigration(await readFile(join(cwd, 'm', file), 'utf8'))).toMatchObject({ up: [full.up], down: [full.down] });

      const runner = new SchematicTestRunner('nestjs-bemi', join(pkg.dir, 'schematics', 'collection.json'));
      for (const schematic of ['migration', 'nest-add']) {
        const schema = JSON.parse(await readFile(join(pkg.dir, 'schematics', schematic, 'schema.json'), 'utf8'));
        expect([schematic, schema.properties.replicaIdentityFull.default]).toEqual([schematic, true]);
        const tree = await runner.runSchematic(schematic, { path: 'm', skipModule: true }, new UnitTestTree(new HostTree()));
        const generated = tree.readText(tree.files.find((f) => f.startsWith('/m/'))!);
        expect(await loadMigration(generated)).toMatchObject({ up: [full.up], down: [full.down] });
      }
    });

    it.each([
      [['--schemas', 'public,audit'], { schemas: 'public,audit' }],
      [['--no-replica-identity-full'], { replicaIdentityFull: false }],
      [[], {}],
    ])('migration:create %j writes the same migration as the migration schematic with %j', async (args, schematicOptions) => {
      const result = await bin(['migration:create', '--path', 'm', ...args]);
      expect(result).toMatchObject({ code: 0, stderr: '' });
      const [file] = await readdir(join(cwd, 'm'));
      const fromBin = await readFile(join(cwd, 'm', file), 'utf8');

      const runner = new SchematicTestRunner('nestjs-bemi', join(pkg.dir, 'schematics', 'collection.json'));
      const tree = await runner.runSchematic('migration', { path: 'm', ...schematicOptions }, new UnitTestTree(new HostTree()));
      const fromSchematic = tree.readText(tree.files.find((f) => f.startsWith('/m/'))!);

      const [a, b] = [await loadMigration(fromBin), await loadMigration(fromSchematic)];
      expect(a.up).toEqual(b.up);
      expect(a.down).toEqual(b.down);
      expect(body(fromBin)).toBe(body(fromSchematic));
    });
  });
});
