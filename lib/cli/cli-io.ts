import { BemiError } from '../shared/bemi-error';

/** Where a command writes and which directory it works in; tests pass their own. */
export interface CliIo {
  out(text: string): void;
  err(text: string): void;
  cwd: string;
}

export const processIo: CliIo = {
  out: (text) => process.stdout.write(text.endsWith('\n') ? text : `${text}\n`),
  err: (text) => process.stderr.write(text.endsWith('\n') ? text : `${text}\n`),
  get cwd() {
    return process.cwd();
  },
};

/** A bad command line: the bin prints its message on one line and exits with code 2. */
export class UsageError extends BemiError {
  constructor(message: string) {
    // The message already says what is wrong with the line; the bin prints it as it is.
    super(message);
  }
}

/** First line of an error message, for one-line reasons. */
export function oneLineReason(error: unknown): string {
  const message =
    typeof error === 'object' && error !== null && typeof (error as { message?: unknown }).message === 'string'
      ? (error as { message: string }).message
      : String(error);
  return message.split('\n')[0].trim();
}

/** The whole message of an error (every line), or the value as text. */
export function errorMessage(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}
