import { execFile } from 'node:child_process';
import { join } from 'node:path';
import { runCli } from '../../../lib/cli/main';
import { compileLib } from '../../capture/support/processes';
import { MemoryIo } from './memory-io';

/** What a run of the bin gave: its exit code and what it wrote. */
export interface CliResult {
  code: number;
  stdout: string;
  stderr: string;
}

/** The bin's commands in this process, writing into memory. */
export async function cli(...argv: string[]): Promise<CliResult> {
  const io = new MemoryIo();
  const code = await runCli(argv, io);
  return { code, stdout: io.stdout, stderr: io.stderr };
}

/** The bin as a separate process (lib/ transpiled, as the capture tests run it), without the environment's database URL or chain key. */
export function bin(args: string[], env: Record<string, string | undefined> = {}): Promise<CliResult> {
  return new Promise((resolve) => {
    execFile(process.execPath, [join(compileLib(), 'cli', 'main.js'), ...args], { env: { ...process.env, DATABASE_URL: undefined, BEMI_CHAIN_KEY: undefined, ...env } }, (error, stdout, stderr) => {
      resolve({ code: error ? Number(error.code) : 0, stdout, stderr });
    });
  });
}
