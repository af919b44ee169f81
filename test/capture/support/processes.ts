import { spawn, type ChildProcess } from 'node:child_process';
import { mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { dirname, join, relative } from 'node:path';
import * as ts from 'typescript';

const ROOT = join(__dirname, '..', '..', '..');
let compiled: string | undefined;

/**
 * Transpiles lib/ once per test file (no type check, like the jest transform) into a directory
 * inside node_modules, so worker processes start fast and resolve dependencies normally.
 */
export function compileLib(): string {
  if (compiled) return compiled;
  const cache = join(ROOT, 'node_modules', '.cache');
  mkdirSync(cache, { recursive: true });
  // Jest may force-exit a worker before its exit hook runs: clear copies of processes that are gone.
  for (const name of readdirSync(cache, { withFileTypes: true }).filter((e) => e.isDirectory()).map((e) => e.name)) {
    const pid = Number(/^nestjs-bemi-capture-(\d+)$/.exec(name)?.[1]);
    if (pid && !alive(pid)) rmSync(join(cache, name), { recursive: true, force: true });
  }
  const out = join(cache, `nestjs-bemi-capture-${process.pid}`);
  const walk = (dir: string): void => {
    for (const entry of readdirSync(dir, { withFileTypes: true })) {
      const path = join(dir, entry.name);
      if (entry.isDirectory()) walk(path);
      else if (entry.name.endsWith('.ts') && !entry.name.endsWith('.d.ts')) {
        const target = join(out, relative(join(ROOT, 'lib'), path)).replace(/\.ts$/, '.js');
        mkdirSync(dirname(target), { recursive: true });
        const { outputText } = ts.transpileModule(readFileSync(path, 'utf8'), {
          fileName: path,
          compilerOptions: { module: ts.ModuleKind.CommonJS, target: ts.ScriptTarget.ES2022, experimentalDecorators: true, emitDecoratorMetadata: true, esModuleInterop: true },
        });
        writeFileSync(target, outputText);
      }
    }
  };
  walk(join(ROOT, 'lib'));
  process.once('exit', () => rmSync(out, { recursive: true, force: true }));
  compiled = out;
  return out;
}

/** A child process whose output is collected, with helpers to wait for lines and for its exit. */
export class ChildRun {
  stdout = '';
  stderr = '';
  readonly exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;

  constructor(readonly child: ChildProcess) {
    child.stdout!.on('data', (d) => (this.stdout += d));
    child.stderr!.on('data', (d) => (this.stderr += d));
    this.exited = new Promise((resolve) => child.on('exit', (code, signal) => resolve({ code, signal })));
  }

  /** Resolves when stdout contains `text`; rejects if the process exits first or after `timeoutMs`. */
  async waitForOutput(text: string, timeoutMs = 60_000): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    let exited = false;
    void this.exited.then(() => (exited = true));
    while (!this.stdout.includes(text)) {
      if (exited) throw new Error(`process exited before printing "${text}"\nstdout: ${this.stdout}\nstderr: ${this.stderr}`);
      if (Date.now() > deadline) throw new Error(`timed out waiting for "${text}"\nstdout: ${this.stdout}\nstderr: ${this.stderr}`);
      await new Promise((r) => setTimeout(r, 25));
    }
  }
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

/** Starts `nestjs-bemi capture <args>` (from the TypeScript sources) in a child process. */
export function spawnCapture(args: string[]): ChildRun {
  return new ChildRun(
    spawn(process.execPath, [join(__dirname, 'capture-child.js'), ...args], {
      stdio: ['ignore', 'pipe', 'pipe'],
      env: { ...process.env, BEMI_CAPTURE_LIB: compileLib() },
    }),
  );
}

/** A free TCP port on 127.0.0.1. */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.on('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as { port: number };
      server.close(() => resolve(port));
    });
  });
}

/** A PostgreSQL server in a child process (for restarts and other server settings). */
export async function spawnPostgres(dataDir: string, port: number, extraFlags: string[] = []): Promise<{ run: ChildRun; url: string }> {
  const run = new ChildRun(spawn(process.execPath, [join(__dirname, 'postgres-child.mjs'), dataDir, String(port), ...extraFlags], { stdio: ['ignore', 'pipe', 'pipe'] }));
  await run.waitForOutput('\n', 120_000);
  return { run, url: JSON.parse(run.stdout.split('\n')[0]).url };
}
