import { parseArgs, type ParseArgsConfig } from 'node:util';
import { BemiError } from '../shared/bemi-error';

/** Where a command writes and which directory it works in; tests pass their own. */
export interface CliIo {
  out(text: string): void;
  err(text: string): void;
  cwd: string;
  /** Writes to stderr as it is (no newline added), when stderr is a terminal: for a progress bar. Absent otherwise. */
  readonly terminal?: (text: string) => void;
}

export const processIo: CliIo = {
  out: (text) => process.stdout.write(text.endsWith('\n') ? text : `${text}\n`),
  err: (text) => process.stderr.write(text.endsWith('\n') ? text : `${text}\n`),
  get terminal() {
    return process.stderr.isTTY ? (text: string) => void process.stderr.write(text) : undefined;
  },
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

/** A `node:util` parseArgs error in the words of this CLI: the option or argument at fault, one line. */
export function parseErrorMessage(error: unknown): string {
  const code = (error as { code?: string }).code;
  const message = oneLineReason(error);
  const quoted = /'([^']+)'/.exec(message)?.[1];
  if (code === 'ERR_PARSE_ARGS_UNKNOWN_OPTION') return `unknown option ${quoted ?? message}`;
  if (code === 'ERR_PARSE_ARGS_UNEXPECTED_POSITIONAL') return `unexpected argument ${quoted ? `"${quoted}" ` : ''}(options take the form --name value)`;
  if (code === 'ERR_PARSE_ARGS_INVALID_OPTION_VALUE') return message.replace(/^Option '([^']+)'/, '$1').replace(/\.$/, '');
  return message;
}

/** A command's flags (no positional arguments), or a UsageError in the words of {@link parseErrorMessage}. */
export function parseCommandLine(argv: string[], options: NonNullable<ParseArgsConfig['options']>): Record<string, string | boolean | string[] | undefined> {
  try {
    return parseArgs({ args: argv, strict: true, allowPositionals: false, options }).values as Record<string, string | boolean | string[] | undefined>;
  } catch (error) {
    throw new UsageError(parseErrorMessage(error));
  }
}
