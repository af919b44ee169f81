import { UsageError, type CliIo } from './cli-io';

/** Where the capture commands look for the tracked database after --database-url. */
export const CAPTURE_DATABASE_ENV = ['BEMI_CAPTURE_SOURCE', 'DATABASE_URL'];

/** The flags every command that connects to a database accepts for it. */
export interface DatabaseUrlFlags {
  'database-url'?: string;
  /** Deprecated name of --database-url (capture and capture:drop-slot only). */
  source?: string;
}

/**
 * The database a command works on: --database-url, then the environment (`env`, in order; every
 * command ends with DATABASE_URL). `--source`, the old name of capture's flag, still works: it
 * prints one deprecation line to stderr. Undefined when none is given.
 */
export function databaseUrl(command: string, flags: DatabaseUrlFlags, io: CliIo, env: string[] = ['DATABASE_URL']): string | undefined {
  if (flags.source !== undefined) {
    if (flags['database-url'] !== undefined) throw new UsageError('--source is the deprecated name of --database-url; pass only --database-url');
    io.err(`nestjs-bemi ${command}: --source is deprecated; use --database-url (same meaning)`);
  }
  for (const [flag, value] of [['--database-url', flags['database-url']], ['--source', flags.source]] as const) {
    if (value !== undefined && value.trim() === '') throw new UsageError(`${flag} needs a non-empty value`);
  }
  return flags['database-url'] ?? flags.source ?? env.map((name) => process.env[name]).find((value) => value !== undefined);
}

/** "--database-url is required (or set A / B)". */
export function databaseUrlRequired(env: string[] = ['DATABASE_URL']): string {
  return `--database-url is required (or set ${env.join(' / ')})`;
}
