import type { CliIo } from '../../../lib/cli/cli-io';

/** A CliIo that keeps what a command writes, each write a line as processIo prints it. */
export class MemoryIo implements CliIo {
  stdout = '';
  stderr = '';
  constructor(readonly cwd: string = process.cwd()) {}
  out = (text: string): void => {
    this.stdout += text.endsWith('\n') ? text : `${text}\n`;
  };
  err = (text: string): void => {
    this.stderr += text.endsWith('\n') ? text : `${text}\n`;
  };
}

/**
 * Collects what is written to the process's own stdout and stderr while `fn` runs (still
 * printing it), to show that a command wrote nothing there.
 */
export async function processOutputDuring<T>(fn: () => Promise<T>): Promise<{ result: T; written: string }> {
  let written = '';
  const spies = [process.stdout, process.stderr].map((stream) => {
    const write = stream.write.bind(stream);
    return jest.spyOn(stream, 'write').mockImplementation(((chunk: string | Uint8Array, ...rest: never[]) => {
      written += String(chunk);
      return write(chunk, ...rest);
    }) as typeof stream.write);
  });
  try {
    return { result: await fn(), written };
  } finally {
    for (const spy of spies) spy.mockRestore();
  }
}
