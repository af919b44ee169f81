import { execFile } from 'node:child_process';

/** What a command printed, and how it ended. */
export interface ShellResult {
  code: number;
  stdout: string;
  stderr: string;
}

/**
 * The environment of a user's shell: this process's, without what jest, ts-jest and the
 * next-stack leg set (MikroORM reads TS_JEST to prefer .ts files), with colours off.
 */
export function userEnv(extra: Record<string, string> = {}): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = { ...process.env, ...extra, NO_COLOR: '1', FORCE_COLOR: '0' };
  for (const key of Object.keys(env)) if (key === 'TS_JEST' || key.startsWith('JEST_') || key === 'NODE_OPTIONS') delete env[key];
  return env;
}

/** Runs a command as a user would; resolves with its result whatever the exit code. `timeoutMs` 0: none. */
export function sh(cwd: string, file: string, args: string[], extra: Record<string, string> = {}, timeoutMs = 0): Promise<ShellResult> {
  return new Promise((resolve) => {
    execFile(file, args, { cwd, env: userEnv(extra), maxBuffer: 64 * 1024 * 1024, timeout: timeoutMs }, (error, stdout, stderr) => {
      resolve({ code: error ? (typeof error.code === 'number' ? error.code : 1) : 0, stdout, stderr });
    });
  });
}

/** Like {@link sh}, but rejects with the command's output when it does not exit 0. */
export async function ok(cwd: string, file: string, args: string[], extra: Record<string, string> = {}, timeoutMs = 0): Promise<ShellResult> {
  const result = await sh(cwd, file, args, extra, timeoutMs);
  if (result.code !== 0) throw new Error(`${file} ${args.join(' ')} exited ${result.code}\n${result.stdout}\n${result.stderr}`);
  return result;
}
