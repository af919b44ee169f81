import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { bemiMigrationSql } from '../../lib/migration/bemi-migration-sql';
import { createTestDatabase, TestDatabase } from '../support/database';
import { packPackage } from '../schematics/support';
import { ok as okWithin, sh as shWithin } from '../support/user-shell';
import { currentStack } from '../stacks/stack';

/**
 * The package as a new user gets it, on the stack this run tests (see test/stacks): `npm pack`,
 * a plain `npm install` (no flags, so the peer ranges must admit the stack) into a CommonJS app
 * and into an ESM app (`"type": "module"`, what `nest new` scaffolds on Nest 12), both compiled by
 * the app's own tsc with `skipLibCheck: false` (our .d.ts must compile for them), then run
 * against the test PostgreSQL: an HTTP write through the interceptor, `@BemiContext()` and
 * `BemiService.set()`, captured in-app, read back with `changes()` and `at()`.
 */

jest.setTimeout(300_000);

/** Each command of this suite gets at most 240 s. */
const COMMAND_TIMEOUT_MS = 240_000;
const sh = (cwd: string, file: string, args: string[], extra: Record<string, string> = {}) => shWithin(cwd, file, args, extra, COMMAND_TIMEOUT_MS);
const ok = (cwd: string, file: string, args: string[], extra: Record<string, string> = {}) => okWithin(cwd, file, args, extra, COMMAND_TIMEOUT_MS);

const stack = currentStack();

/** The app: one entity, one controller, BemiModule with in-app capture. Same text for CJS and ESM. */
const APP = `import 'reflect-metadata';
import { Controller, Module, Param, Post } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import { MikroOrmModule } from '@mikro-orm/nestjs';
import { EntitySchema, MikroORM } from '@mikro-orm/core';
import { PostgreSqlDriver } from '@mikro-orm/postgresql';
import { BemiChange, BemiContext, BemiHistory, BemiModule, BemiService, type HistoryChange } from 'nestjs-bemi';

export class Todo {
  id!: number;
  task!: string;
}
const TodoSchema = new EntitySchema<Todo>({
  class: Todo,
  tableName: 'todo',
  properties: { id: { type: 'integer', primary: true }, task: { type: 'text' } },
});

@Controller('lists')
class TodoController {
  constructor(private readonly orm: MikroORM, private readonly bemi: BemiService) {}

  @Post(':list/todos')
  @BemiContext({ action: 'todo.create' })
  async create(@Param('list') list: string): Promise<{ id: number }> {
    this.bemi.set({ list });
    const em = this.orm.em.fork();
    const todo = em.create(Todo, { id: 1, task: 'Sleep' });
    await em.flush();
    return { id: todo.id };
  }
}

@Module({
  imports: [
    MikroOrmModule.forRoot({ driver: PostgreSqlDriver, clientUrl: process.env.DATABASE_URL, entities: [TodoSchema, BemiChange] }),
    BemiModule.forRoot({ capture: { slotName: process.env.SLOT_NAME, publicationName: process.env.SLOT_NAME, progressIntervalMs: 0 } }),
  ],
  controllers: [TodoController],
})
class AppModule {}

async function main(): Promise<void> {
  const app = await NestFactory.create(AppModule, { logger: ['error', 'warn'] });
  app.enableShutdownHooks();
  await app.listen(0, '127.0.0.1');
  const response = await fetch(\`\${await app.getUrl()}/lists/groceries/todos\`, { method: 'POST' });
  if (response.status !== 201) throw new Error(\`POST answered \${response.status}: \${await response.text()}\`);
  const history = app.get(BemiHistory);
  let trail: HistoryChange<Todo>[] = [];
  for (let i = 0; i < 300 && trail.length === 0; i++) {
    trail = await history.changes(Todo, { primaryKey: 1 });
    if (trail.length === 0) await new Promise((r) => setTimeout(r, 100));
  }
  const then = await history.at(Todo, 1, trail[0]?.commitTimestamp ?? new Date());
  console.log('RESULT ' + JSON.stringify({
    operations: trail.map((c) => c.operation),
    commitPosition: trail[0]?.commitPosition,
    context: trail[0]?.context,
    at: then ? { id: then.id, task: then.task, isTodo: then instanceof Todo } : null,
  }));
  await app.close();
}

main().catch((error) => {
  console.error(error);
  process.exit(1);
});
`;

const MODULE_KINDS = [
  { kind: 'cjs', type: 'commonjs', module: 'nodenext' },
  { kind: 'esm', type: 'module', module: 'nodenext' },
] as const;

describe(`a fresh app on the ${stack.name} stack installs the packed package and records context (CommonJS and ESM)`, () => {
  let work: string;
  let db: TestDatabase;

  beforeAll(async () => {
    work = await mkdtemp(join(tmpdir(), `nestjs-bemi-consumer-${stack.name}-`));
    const tarball = await packPackage(work);
    // One install shared by both apps (Node looks for node_modules in parent directories).
    const { '@nestjs/cli': _cli, '@nestjs/schematics': _schematics, ...tools } = stack.tools;
    await writeFile(
      join(work, 'package.json'),
      JSON.stringify({ name: 'consumer', private: true, dependencies: { ...stack.app, 'nestjs-bemi': `file:${tarball}` }, devDependencies: tools }, null, 2),
    );
    // No --legacy-peer-deps / --force: ERESOLVE on a peer range fails here.
    await ok(work, 'npm', ['install', '--prefer-offline', '--no-audit', '--no-fund', '--loglevel=error']);
    for (const { kind, type, module } of MODULE_KINDS) {
      const app = join(work, kind);
      await mkdir(join(app, 'src'), { recursive: true });
      await writeFile(join(app, 'package.json'), JSON.stringify({ name: `consumer-${kind}`, private: true, type }, null, 2));
      await writeFile(
        join(app, 'tsconfig.json'),
        JSON.stringify(
          {
            compilerOptions: {
              module,
              moduleResolution: module,
              target: 'ES2022',
              strict: true,
              skipLibCheck: false,
              experimentalDecorators: true,
              emitDecoratorMetadata: true,
              esModuleInterop: true,
              outDir: 'dist',
              rootDir: 'src',
              types: ['node'],
            },
            include: ['src'],
          },
          null,
          2,
        ),
      );
      await writeFile(join(app, 'src', 'main.ts'), APP);
    }
    db = await createTestDatabase(`consumer_${stack.name}`);
    await db.query('CREATE TABLE todo (id integer PRIMARY KEY, task text NOT NULL)');
    await db.query(bemiMigrationSql().up);
  }, 600_000);

  afterAll(async () => {
    await db?.drop();
    if (work) await rm(work, { recursive: true, force: true });
  });

  /**
   * tsc errors in the app or in nestjs-bemi's files. Another package's own .d.ts errors are not
   * ours to fix (seen: @mikro-orm/postgresql 7's postgres-interval needs the Temporal lib), so
   * they are printed, not failed on.
   */
  function ourErrors(output: string): string[] {
    const errors = output.split('\n').filter((line) => /error TS\d+/.test(line));
    const others = errors.filter((line) => line.includes('node_modules/') && !line.includes('node_modules/nestjs-bemi/'));
    if (others.length) console.log(`tsc errors in other packages' types (not failed on):\n${others.join('\n')}`);
    return errors.filter((line) => !others.includes(line));
  }

  it.each(MODULE_KINDS.map((m) => m.kind))('%s: compiles with skipLibCheck false and records the request context', async (kind) => {
    const app = join(work, kind);
    const tsc = await sh(app, process.execPath, [join(work, 'node_modules', 'typescript', 'bin', 'tsc'), '-p', 'tsconfig.json']);
    expect(ourErrors(tsc.stdout + tsc.stderr)).toEqual([]);
    expect(existsSync(join(app, 'dist', 'main.js'))).toBe(true);

    // The Node that runs this suite, and the other versions the leg asks for (BEMI_ALSO_NODE).
    const nodes = [process.execPath, ...(process.env.BEMI_ALSO_NODE ?? '').split(':').filter(Boolean)];
    for (const node of nodes) {
      const slot = `consumer_${kind}_${stack.name}`;
      const run = await ok(app, node, ['dist/main.js'], { DATABASE_URL: db.url, SLOT_NAME: slot });
      const line = run.stdout.split('\n').find((l) => l.startsWith('RESULT '));
      expect({ node, line }).toEqual({ node, line: expect.stringMatching(/^RESULT /) });
      const result = JSON.parse(line!.slice('RESULT '.length));
      expect(result.operations).toEqual(['CREATE']);
      expect(result.context).toEqual(expect.objectContaining({ endpoint: '/lists/:list/todos', method: 'POST', action: 'todo.create', list: 'groceries' }));
      expect(result.at).toEqual({ id: 1, task: 'Sleep', isTodo: true });
      // The app ends cleanly: nothing it logged is a warning or an error of ours, and shutdown
      // (enableShutdownHooks + close: Nest 12 orders hooks by module depth) acknowledged the change.
      expect(run.stderr).not.toMatch(/Bemi|nestjs-bemi/);
      const [slotRow] = await db.query<{ confirmed: string; active: boolean }>(
        `SELECT (confirmed_flush_lsn - '0/0'::pg_lsn)::text AS confirmed, active FROM pg_replication_slots WHERE slot_name = $1`,
        [slot],
      );
      expect(slotRow.active).toBe(false);
      expect(BigInt(slotRow.confirmed) >= BigInt(result.commitPosition)).toBe(true);
      await db.query('DELETE FROM todo');
      await db.query('SELECT pg_drop_replication_slot($1)', [slot]);
      await db.query('DELETE FROM changes');
      await db.query('DELETE FROM _bemi_capture_state');
    }
  });
});
