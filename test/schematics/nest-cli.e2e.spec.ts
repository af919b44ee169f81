import { mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { BEMI_SQL_OBJECTS as O, bemiMigrationSql } from '../../lib/migration/bemi-migration-sql';
import { createTestDatabase, TestDatabase } from '../support/database';
import { loadMigration, packPackage } from './support';
import { ok, sh, type ShellResult } from '../support/user-shell';
import { currentStack } from '../stacks/stack';
import { writeScratchApp } from '../support/scratch-app';

/**
 * End to end, as a user gets it: the package is built and packed with `npm pack`, installed from
 * the tarball into a throwaway NestJS + MikroORM app next to the real Nest CLI of the stack under
 * test (test/stacks: CLI 11 and CommonJS, or CLI 12 and ESM), the Nest CLI generates the migration, the app compiles it with its own tsc, and MikroORM's Migrator runs it
 * up and down against the test PostgreSQL.
 */

jest.setTimeout(240_000);

const stack = currentStack();
/** The app (test/support/scratch-app.ts) is the stack's: CLI 11 and CommonJS, or CLI 12 and ESM. */
const NEST_CLI = stack.tools['@nestjs/cli'];

/** Runs MikroORM's Migrator with the app's compiled config: node migrate.mjs up|down (CJS or ESM build). */
const MIGRATE = `import { MikroORM } from '@mikro-orm/postgresql';
const compiled = await import('./dist/mikro-orm.config.js');
const config = compiled.default?.default ?? compiled.default;
const orm = await MikroORM.init(config);
try {
  // MikroORM 7: orm.migrator; 6: orm.getMigrator().
  const migrator = orm.migrator ?? orm.getMigrator();
  const done = process.argv[2] === 'down' ? await migrator.down() : await migrator.up();
  console.log(JSON.stringify(done.map((m) => m.name)));
} finally {
  await orm.close(true);
}
`;

describe(`end to end (${stack.name} stack): npm pack → Nest CLI ${NEST_CLI} app → nest g -c nestjs-bemi migration → MikroORM migration:up/down on PostgreSQL`, () => {
  let work: string;
  let app: string;
  let db: TestDatabase;
  let nest: (...args: string[]) => Promise<ShellResult>;
  const timings: Record<string, number> = {};

  async function timed<T>(label: string, fn: () => Promise<T>): Promise<T> {
    const start = Date.now();
    try {
      return await fn();
    } finally {
      timings[label] = Date.now() - start;
    }
  }

  beforeAll(async () => {
    work = await mkdtemp(join(tmpdir(), 'nestjs-bemi-e2e-'));
    app = join(work, 'app');
    const tarball = await timed('build and pack', () => packPackage(work));
    await writeScratchApp(app, { stack, migrationsDir: 'db/migrations', packageJson: { dependencies: { ...stack.app, 'nestjs-bemi': `file:${tarball}` } } });
    await writeFile(join(app, 'migrate.mjs'), MIGRATE);
    await timed('npm install', () => ok(app, 'npm', ['install', '--prefer-offline', '--no-audit', '--no-fund', '--loglevel=error']));
    const nestBin = join(app, 'node_modules', '@nestjs', 'cli', 'bin', 'nest.js');
    nest = (...args) => sh(app, process.execPath, [nestBin, ...args]);
    db = await createTestDatabase('nestcli');
  }, 600_000);

  afterAll(async () => {
    await db?.drop();
    if (work) await rm(work, { recursive: true, force: true });
    console.log(`e2e timings (ms): ${JSON.stringify(timings)}`);
  });

  async function migrationFiles(): Promise<string[]> {
    const dir = join(app, 'src', 'db', 'migrations');
    return existsSync(dir) ? (await readdir(dir)).sort() : [];
  }

  it('the packed package ships the bin, the schematics and the compiled code they load', async () => {
    const installed = join(app, 'node_modules', 'nestjs-bemi');
    for (const file of ['schematics/collection.json', 'schematics/migration/schema.json', 'schematics/utils.js', 'dist/cli/main.js', 'dist/migration/migration-file.js']) {
      expect(existsSync(join(installed, file))).toBe(true);
    }
    const help = await ok(app, join(app, 'node_modules', '.bin', 'nestjs-bemi'), ['--help']);
    expect(help.stdout).toContain('migration:create');
  });

  it('nest g bemi:migration is rejected by the stock CLI ("Invalid schematic", exit 0): the documented reason for the -c form', async () => {
    const result = await nest('g', 'bemi:migration');
    expect(result.code).toBe(0);
    expect(result.stderr + result.stdout).toMatch(/Invalid schematic "bemi:migration"/);
    expect(await migrationFiles()).toEqual([]);
  });

  it('nest g -c nestjs-bemi migration --dry-run writes nothing', async () => {
    const result = await timed('nest g --dry-run', () => nest('g', '-c', 'nestjs-bemi', 'migration', '--dry-run'));
    expect(result.code).toBe(0);
    expect(result.stdout).toMatch(/CREATE src\/db\/migrations\/Migration\d{14}_bemi\.ts/);
    expect(await migrationFiles()).toEqual([]);
  });

  it('nest g -c nestjs-bemi migration writes the migration where the MikroORM config keeps migrations', async () => {
    const result = await timed('nest g', () => nest('g', '-c', 'nestjs-bemi', 'migration'));
    expect(result).toMatchObject({ code: 0, stderr: '' });
    expect(await migrationFiles()).toEqual([expect.stringMatching(/^Migration\d{14}_bemi\.ts$/)]);
  });

  it('a second nest g -c nestjs-bemi migration fails naming the existing file and writes nothing', async () => {
    const [existing] = await migrationFiles();
    const result = await nest('g', '-c', 'nestjs-bemi', 'migration');
    // The stock Nest CLI (11 and 12) prints a failed schematic's message but exits 0, as for "Invalid schematic".
    expect(result.code).toBe(0);
    expect(result.stdout + result.stderr).toContain(`src/db/migrations/${existing} exists already`);
    expect(result.stdout + result.stderr).toMatch(/--force/);
    expect(await migrationFiles()).toEqual([existing]);
  });

  it('with "collection": "nestjs-bemi" in nest-cli.json, nest g migration and nest g controller both work', async () => {
    await writeFile(join(app, 'nest-cli.json'), JSON.stringify({ collection: 'nestjs-bemi', sourceRoot: 'src' }, null, 2));
    try {
      // a name of its own: the _bemi migration of the test above exists
      const migration = await nest('g', 'migration', 'other', '--dry-run');
      expect(migration.code).toBe(0);
      expect(migration.stdout).toMatch(/CREATE src\/db\/migrations\/Migration\d{14}_other\.ts/);
      const controller = await nest('g', 'controller', 'cats', '--no-spec');
      expect(controller.code).toBe(0);
      expect(controller.stdout).toMatch(/CREATE src\/cats\/cats\.controller\.ts/);
      expect(await readFile(join(app, 'src', 'app.module.ts'), 'utf8')).toContain('CatsController');
    } finally {
      await writeFile(join(app, 'nest-cli.json'), JSON.stringify({ collection: '@nestjs/schematics', sourceRoot: 'src' }, null, 2));
    }
  });

  // schematics-cli 22 (Nest CLI 12) turns an unknown --no-<flag> into <flag>: true; the schematic
  // reads the flag as written (schematics/utils.js), so this holds on both stacks.
  it('the schematics CLI the Nest CLI installs passes every option: nestjs-bemi:migration --schemas --no-replica-identity-full', async () => {
    const schematicsBin = join(app, 'node_modules', '@angular-devkit', 'schematics-cli', 'bin', 'schematics.js');
    const result = await sh(app, process.execPath, [schematicsBin, 'nestjs-bemi:migration', '--schemas=public,audit', '--no-replica-identity-full', '--path=tmp/other']);
    expect(result).toMatchObject({ code: 0 });
    const [file] = await readdir(join(app, 'tmp', 'other'));
    const loaded = await loadMigration(await readFile(join(app, 'tmp', 'other', file), 'utf8'));
    expect(loaded.up).toEqual([bemiMigrationSql({ schemas: ['public', 'audit'], replicaIdentityFull: false }).up]);
    // a second one is refused; --force, which this CLI keeps for itself, still reaches the schematic
    const again = await sh(app, process.execPath, [schematicsBin, 'nestjs-bemi:migration', '--path=tmp/other']);
    expect(again.code).not.toBe(0);
    expect(again.stdout + again.stderr).toContain(`tmp/other/${file} exists already`);
    expect(await readdir(join(app, 'tmp', 'other'))).toEqual([file]);
    const forced = await sh(app, process.execPath, [schematicsBin, 'nestjs-bemi:migration', '--path=tmp/other', '--force']);
    expect(forced).toMatchObject({ code: 0 });
    expect(await readdir(join(app, 'tmp', 'other'))).toHaveLength(2);
    await rm(join(app, 'tmp'), { recursive: true });
  });

  it('nest add nestjs-bemi imports BemiModule.forRoot() in the root module, keeps the existing migration, and is idempotent', async () => {
    const first = await timed('nest add', () => nest('add', 'nestjs-bemi', '--skip-install'));
    expect(first.code).toBe(0);
    const module = await readFile(join(app, 'src', 'app.module.ts'), 'utf8');
    expect(module).toContain(`import { BemiModule } from 'nestjs-bemi';`);
    expect(module).toMatch(/imports: \[MikroOrmModule\.forRoot\(config\), BemiModule\.forRoot\(\)\]/);
    expect(first.stdout).toMatch(/npx mikro-orm migration:up/);
    const second = await nest('add', 'nestjs-bemi', '--skip-install');
    expect(second.code).toBe(0);
    expect(await readFile(join(app, 'src', 'app.module.ts'), 'utf8')).toBe(module);
    expect(await migrationFiles()).toHaveLength(1);
  });

  it('the app compiles (root module and migration) with its own tsc, strict and noImplicitOverride', async () => {
    const tsc = join(app, 'node_modules', 'typescript', 'bin', 'tsc');
    await timed('app tsc', () => ok(app, process.execPath, [tsc, '-p', 'tsconfig.json']));
    const [file] = await migrationFiles();
    expect(existsSync(join(app, 'dist', 'db', 'migrations', file.replace(/\.ts$/, '.js')))).toBe(true);
  });

  it('MikroORM runs the migration up (triggers and functions exist), up again harmlessly, and down (all gone)', async () => {
    await db.query(`CREATE TABLE todo (id serial PRIMARY KEY, task text); CREATE TABLE note (id int PRIMARY KEY)`);
    const env = { DATABASE_URL: db.url };
    const [file] = await migrationFiles();
    const name = file.replace(/\.ts$/, '');

    const up = await timed('migration:up', () => ok(app, process.execPath, ['migrate.mjs', 'up'], env));
    expect(JSON.parse(up.stdout.trim().split('\n').pop()!)).toEqual([name]);
    await expectInstalled(db);

    // up twice: forget that it ran and run it again
    await db.query(`DELETE FROM mikro_orm_migrations WHERE name LIKE $1`, [`${name}%`]);
    const again = await ok(app, process.execPath, ['migrate.mjs', 'up'], env);
    expect(JSON.parse(again.stdout.trim().split('\n').pop()!)).toEqual([name]);
    await expectInstalled(db);

    const down = await timed('migration:down', () => ok(app, process.execPath, ['migrate.mjs', 'down'], env));
    expect(JSON.parse(down.stdout.trim().split('\n').pop()!)).toEqual([name]);
    expect(await db.query(`SELECT tgrelid::regclass::text AS rel FROM pg_trigger WHERE tgname = $1`, [O.trigger])).toEqual([]);
    expect(await db.query(`SELECT proname FROM pg_proc WHERE proname LIKE '\\_bemi%'`)).toEqual([]);
    expect(await db.query(`SELECT evtname FROM pg_event_trigger WHERE evtname = $1`, [O.eventTrigger])).toEqual([]);
    expect(await db.query(`SELECT relname, relreplident FROM pg_class WHERE relname IN ('todo', 'note') ORDER BY 1`)).toEqual([
      { relname: 'note', relreplident: 'd' },
      { relname: 'todo', relreplident: 'd' },
    ]);
    expect(await db.query(`SELECT name FROM mikro_orm_migrations`)).toEqual([]);
  });
});

async function expectInstalled(db: TestDatabase): Promise<void> {
  expect(await db.query(`SELECT tgrelid::regclass::text AS rel FROM pg_trigger WHERE tgname = $1 ORDER BY 1`, [O.trigger])).toEqual([{ rel: 'note' }, { rel: 'todo' }]);
  expect((await db.query<{ proname: string }>(`SELECT proname FROM pg_proc WHERE proname LIKE '\\_bemi%' ORDER BY 1`)).map((r) => r.proname)).toEqual(
    [O.emitFunction, O.isTrackedFunction, O.onCreateFunction, O.trackFunction].sort(),
  );
  expect(await db.query(`SELECT evtname FROM pg_event_trigger WHERE evtname = $1`, [O.eventTrigger])).toEqual([{ evtname: O.eventTrigger }]);
  // the generator's default: REPLICA IDENTITY FULL; and the migrations table itself is not tracked
  expect(await db.query(`SELECT relname, relreplident FROM pg_class WHERE relname IN ('todo', 'note', 'mikro_orm_migrations') ORDER BY 1`)).toEqual([
    { relname: 'mikro_orm_migrations', relreplident: 'd' },
    { relname: 'note', relreplident: 'f' },
    { relname: 'todo', relreplident: 'f' },
  ]);
}
