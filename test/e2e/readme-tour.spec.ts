import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { BEMI_SQL_OBJECTS as O } from '../../lib/migration/bemi-migration-sql';
import { createTestDatabase, type TestDatabase } from '../support/database';
import { packPackage, REPO_ROOT } from '../schematics/support';
import { ok } from '../support/user-shell';
import { currentStack } from '../stacks/stack';
import { writeScratchApp } from '../support/scratch-app';

/**
 * The README's five-minute tour cannot rot: its shell commands are read from README.md itself and
 * run, in order and as written, in a fresh Nest app of the stack under test (CommonJS on the
 * lockfile stack, ESM on Nest 12) that has MikroORM but neither nestjs-bemi, its CLI nor its
 * migrator. Two lines change, both because the package under test is not in the registry:
 * `npm install nestjs-bemi` installs the packed package, and `nest add nestjs-bemi` gets
 * `--skip-install` (it would `npm install nestjs-bemi@latest` first).
 * Then the app's root module imports BemiModule and the triggers exist in the database.
 */

jest.setTimeout(420_000);

/** Each command of this suite gets at most 400 s. */
const COMMAND_TIMEOUT_MS = 400_000;
const run = (cwd: string, file: string, args: string[], extra: Record<string, string> = {}) => ok(cwd, file, args, extra, COMMAND_TIMEOUT_MS);

const stack = currentStack();

/** The shell lines of the tour's ```bash blocks, comments dropped. */
export function tourCommands(readme: string): string[] {
  const start = readme.indexOf('## Five-minute tour');
  const end = readme.indexOf('\n## ', start + 1);
  const tour = readme.slice(start, end);
  const lines: string[] = [];
  for (const block of tour.matchAll(/```bash\n([\s\S]*?)```/g)) {
    for (const raw of block[1].split('\n')) {
      const line = raw.replace(/\s+#.*$/, '').trim();
      if (line && !line.startsWith('#')) lines.push(line);
    }
  }
  return lines;
}

describe(`the README's five-minute tour, command by command (${stack.name} stack)`, () => {
  let work: string;
  let app: string;
  let db: TestDatabase;
  let tarball: string;

  beforeAll(async () => {
    work = await mkdtemp(join(tmpdir(), 'nestjs-bemi-tour-'));
    app = join(work, 'app');
    tarball = await packPackage(work);
    // The app has MikroORM, but neither the migrator nor its CLI: the tour installs them.
    await writeScratchApp(app, {
      stack,
      migrationsDir: 'migrations',
      without: ['@mikro-orm/migrations'],
      shutdownHooks: true,
      packageJson: { scripts: { build: 'tsc -p tsconfig.json' }, 'mikro-orm': { configPaths: ['./dist/mikro-orm.config.js'] } },
    });
    await run(app, 'npm', ['install', '--prefer-offline', '--no-audit', '--no-fund', '--loglevel=error']);
    db = await createTestDatabase(`tour_${stack.name}`);
    await db.query(`CREATE TABLE todo (id serial PRIMARY KEY, task text NOT NULL)`);
  }, 600_000);

  afterAll(async () => {
    await db?.drop();
    if (work) await rm(work, { recursive: true, force: true });
  });

  it('the tour has the commands a new user runs', async () => {
    const commands = tourCommands(await readFile(join(REPO_ROOT, 'README.md'), 'utf8'));
    expect(commands[0]).toBe('npm install nestjs-bemi');
    expect(commands).toContain('nest add nestjs-bemi');
    expect(commands.some((c) => c.startsWith('npx mikro-orm migration:up'))).toBe(true);
  });

  it('runs as written: install, nest add, build, migration:up; the triggers are in the database', async () => {
    const commands = tourCommands(await readFile(join(REPO_ROOT, 'README.md'), 'utf8')).map((c) => {
      if (c === 'npm install nestjs-bemi') return `npm install --no-audit --no-fund --loglevel=error ${tarball}`;
      if (c === 'nest add nestjs-bemi') return `${c} --skip-install`;
      return c;
    });
    // One shell, as a user pastes the lines: variables set by one line reach the next.
    const script = ['set -euo pipefail', 'export PATH="$PWD/node_modules/.bin:$PATH"', ...commands.map((c) => `echo "+ ${c.replace(/["$`\\]/g, '\\$&')}"; ${c}`)].join('\n');
    const result = await run(app, 'bash', ['-c', script], { DATABASE_URL: db.url });
    expect(result.stdout).toContain('+ npx mikro-orm migration:up');
    expect(await readFile(join(app, 'src', 'app.module.ts'), 'utf8')).toMatch(/BemiModule\.forRoot\(\)/);
    expect(existsSync(join(app, 'node_modules', '@mikro-orm', 'cli'))).toBe(true);
    const triggers = await db.query(`SELECT tgrelid::regclass::text AS rel FROM pg_trigger WHERE tgname = $1`, [O.trigger]);
    expect(triggers).toEqual([{ rel: 'todo' }]);
    const versions = JSON.parse(await readFile(join(app, 'node_modules', '@mikro-orm', 'migrations', 'package.json'), 'utf8')).version;
    expect(versions).toBe(stack.app['@mikro-orm/core']); // the tour installs the matching version
  });
});
