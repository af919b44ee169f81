#!/usr/bin/env node
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { oneLineReason, processIo, UsageError, type CliIo } from './cli-io';
import { runMigrationCreateCommand } from './commands/migration-create.command';

/** A command of the `nestjs-bemi` bin. Exit code 0 on success. */
export interface CliCommand {
  summary: string;
  run(argv: string[], io: CliIo): Promise<number>;
}

/**
 * The commands of the bin. A command with heavy dependencies loads its module only when it runs
 * (capture needs pg and the replication client; migration:create needs neither).
 */
export const COMMANDS: Record<string, CliCommand> = {
  'migration:create': { summary: 'Write a MikroORM migration that installs the context triggers.', run: runMigrationCreateCommand },
  capture: { summary: 'Stream changes and their context from the WAL into the "changes" table.', run: (argv, io) => import('./commands/capture.command').then((m) => m.runCaptureCommand(argv, io)) },
  'capture:drop-slot': { summary: "Drop the capture worker's replication slot (and publication).", run: (argv, io) => import('./commands/capture-drop-slot.command').then((m) => m.runDropSlotCommand(argv, io)) },
  prune: { summary: 'Delete changes older than a given age, in short batches (--dry-run counts).', run: (argv, io) => import('./commands/prune.command').then((m) => m.runPruneCommand(argv, io)) },
  'trail:roles': { summary: 'Give the trail to the capture role; the application may only read it.', run: (argv, io) => import('./commands/trail-roles.command').then((m) => m.runTrailRolesCommand(argv, io)) },
  'trail:guard': { summary: 'Refuse UPDATE, DELETE and TRUNCATE of "changes" outside retention (one-role setups).', run: (argv, io) => import('./commands/trail-guard.command').then((m) => m.runTrailGuardCommand(argv, io)) },
  verify: { summary: "Check the trail's hash chain (capture --chain); exit 1 at the first broken link.", run: (argv, io) => import('./commands/verify.command').then((m) => m.runVerifyCommand(argv, io)) },
};

export function usage(): string {
  const width = Math.max(...Object.keys(COMMANDS).map((name) => name.length));
  const lines = Object.entries(COMMANDS).map(([name, command]) => `  ${name.padEnd(width)}  ${command.summary}`);
  return `Usage: nestjs-bemi <command> [options]

Commands:
${lines.join('\n')}

Run \`nestjs-bemi <command> --help\` for the options of a command.
`;
}

/** Runs the bin with its arguments (without `node` and the script); resolves to the exit code. */
export async function runCli(argv: string[], io: CliIo = processIo): Promise<number> {
  const [name, ...rest] = argv;
  if (name === undefined || name === '-h' || name === '--help' || name === 'help') {
    (name === undefined ? io.err : io.out)(usage());
    return name === undefined ? 2 : 0;
  }
  if (name === '-v' || name === '--version') {
    io.out(JSON.parse(readFileSync(join(__dirname, '..', '..', 'package.json'), 'utf8')).version);
    return 0;
  }
  const command = Object.prototype.hasOwnProperty.call(COMMANDS, name) ? COMMANDS[name] : undefined;
  if (!command) {
    io.err(`nestjs-bemi: unknown command "${name}" (commands: ${Object.keys(COMMANDS).join(', ')}; see nestjs-bemi --help)`);
    return 2;
  }
  try {
    return await command.run(rest, io);
  } catch (error) {
    io.err(`nestjs-bemi ${name}: ${oneLineReason(error)}`);
    return error instanceof UsageError ? 2 : 1;
  }
}

if (require.main === module) {
  void runCli(process.argv.slice(2)).then((code) => {
    process.exitCode = code;
  });
}
