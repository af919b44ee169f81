import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { cp, mkdtemp, rm, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { promisify } from 'node:util';
import * as ts from 'typescript';

export const run = promisify(execFile);
export const REPO_ROOT = resolve(__dirname, '..', '..');

export interface StagedPackage {
  /** Directory laid out like the published package: dist/, schematics/, package.json. */
  dir: string;
  remove(): Promise<void>;
}

/** The library files the schematics and the bin load at run time (and what they import). */
const TOOLING_ENTRY_POINTS = [
  'lib/cli/main.ts',
  'lib/cli/commands/capture.command.ts',
  'lib/cli/commands/capture-drop-slot.command.ts',
  'lib/cli/commands/prune.command.ts',
  'lib/schematics/root-module.ts',
  'lib/migration/migrations-path.ts',
  'lib/migration/typescript.ts',
  'lib/migration/migration-file.ts',
];

/**
 * Builds the package into a temporary directory, laid out as it is published (dist/ compiled
 * with tsconfig.build.json, schematics/, package.json), so tests run the shipped files and never
 * touch the working tree's dist/. `full: false` compiles only the tooling and what it imports
 * (faster). node_modules links to the repository's, where the Nest CLI's packages
 * (@nestjs/schematics, @angular-devkit/*) and TypeScript are.
 */
export async function stagePackage(options: { full?: boolean; linkNodeModules?: boolean } = {}): Promise<StagedPackage> {
  const dir = await mkdtemp(join(tmpdir(), 'nestjs-bemi-pkg-'));
  await compileLibrary(dir, options.full ? undefined : TOOLING_ENTRY_POINTS);
  await cp(join(REPO_ROOT, 'schematics'), join(dir, 'schematics'), { recursive: true });
  await cp(join(REPO_ROOT, 'package.json'), join(dir, 'package.json'));
  if (options.linkNodeModules !== false) await symlink(join(REPO_ROOT, 'node_modules'), join(dir, 'node_modules'), 'dir');
  return { dir, remove: () => rm(dir, { recursive: true, force: true }) };
}

/**
 * `tsc -p tsconfig.build.json` into `<dir>/dist` (in a child process: the compiler runs several
 * times faster outside jest's module sandbox), optionally for some entry points only.
 * Rejects with the compiler's output on any error.
 */
async function compileLibrary(dir: string, entryPoints?: string[]): Promise<void> {
  const project = join(dir, 'tsconfig.stage.json');
  await writeFile(
    project,
    JSON.stringify({
      extends: join(REPO_ROOT, 'tsconfig.build.json'),
      compilerOptions: { outDir: join(dir, 'dist'), typeRoots: [join(REPO_ROOT, 'node_modules', '@types')] },
      ...(entryPoints ? { files: entryPoints.map((f) => join(REPO_ROOT, f)), include: [] } : {}),
    }),
  );
  try {
    await run(process.execPath, [require.resolve('typescript/bin/tsc'), '-p', project], { cwd: REPO_ROOT });
  } catch (error) {
    const { stdout, stderr } = error as { stdout?: string; stderr?: string };
    throw new Error(`build failed:\n${stdout ?? ''}${stderr ?? ''}`);
  } finally {
    await rm(project, { force: true });
  }
}

/**
 * The package as `npm pack` publishes it, with the README, CHANGELOG and LICENSE, written into
 * `destination`: the tarball a user installs. Returns its path.
 */
export async function packPackage(destination: string): Promise<string> {
  const pkg = await stagePackage({ full: true, linkNodeModules: false });
  try {
    for (const doc of ['README.md', 'CHANGELOG.md', 'LICENSE']) if (existsSync(join(REPO_ROOT, doc))) await cp(join(REPO_ROOT, doc), join(pkg.dir, doc));
    const packed = await run('npm', ['pack', '--ignore-scripts', '--json', '--pack-destination', destination], { cwd: pkg.dir });
    return join(destination, JSON.parse(packed.stdout)[0].filename as string);
  } finally {
    await pkg.remove();
  }
}

export interface LoadedMigration {
  className: string;
  /** The SQL that up() and down() hand to MikroORM, in order. */
  up: string[];
  down: string[];
}

/**
 * Compiles a generated migration file and runs its up() and down() on MikroORM's real
 * `Migration` base class (no database: the queries are collected, not executed), to read the
 * SQL exactly as MikroORM would get it.
 */
export async function loadMigration(source: string): Promise<LoadedMigration> {
  const { outputText, diagnostics } = ts.transpileModule(source, {
    compilerOptions: { module: ts.ModuleKind.CommonJS, target: ts.ScriptTarget.ES2022, noImplicitOverride: true },
    reportDiagnostics: true,
  });
  if (diagnostics?.length) throw new Error(ts.formatDiagnostics(diagnostics, { getCanonicalFileName: (f) => f, getCurrentDirectory: () => '', getNewLine: () => '\n' }));
  const module = { exports: {} as Record<string, any> };
  new Function('require', 'module', 'exports', outputText)(require, module, module.exports);
  const classes = Object.entries(module.exports).filter(([, value]) => typeof value === 'function');
  if (classes.length !== 1) throw new Error(`expected one exported class, got ${classes.map(([k]) => k).join(', ')}`);
  const [className, MigrationClass] = classes[0];
  const queries = async (method: 'up' | 'down') => {
    const migration = new MigrationClass({}, {});
    await migration[method]();
    return migration.getQueries().map((q: unknown) => String(q));
  };
  return { className, up: await queries('up'), down: await queries('down') };
}

/** Type errors of a generated migration file, checked against the real @mikro-orm/migrations types. */
export function typeErrors(fileName: string, source: string): string[] {
  const options: ts.CompilerOptions = {
    module: ts.ModuleKind.CommonJS,
    target: ts.ScriptTarget.ES2022,
    strict: true,
    noImplicitOverride: true,
    noUnusedLocals: true,
    skipLibCheck: true,
    noEmit: true,
    types: [],
  };
  const path = join(REPO_ROOT, 'test', '__generated__', fileName);
  const host = ts.createCompilerHost(options);
  const readFile = host.readFile.bind(host);
  host.readFile = (f) => (resolve(f) === path ? source : readFile(f));
  const fileExists = host.fileExists.bind(host);
  host.fileExists = (f) => resolve(f) === path || fileExists(f);
  const program = ts.createProgram([path], options, host);
  return ts.getPreEmitDiagnostics(program).map((d) => ts.flattenDiagnosticMessageText(d.messageText, '\n'));
}
