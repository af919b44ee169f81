import { mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join, relative, resolve, sep } from 'node:path';
import { DEFAULT_REPLICA_IDENTITY_FULL } from '../../migration/bemi-migration-sql';
import { existingBemiMigrations, renderBemiMigrationFile, parseSchemaList } from '../../migration/migration-file';
import { resolveMigrationsDirectory, type ReadProjectFile } from '../../migration/migrations-path';
import { oneLineReason, parseCommandLine, processIo, UsageError, type CliIo } from '../cli-io';

export const MIGRATION_CREATE_HELP = `Usage: nestjs-bemi migration:create [options]

Writes <path>/Migration<yyyyMMddHHmmss>_bemi.ts, a MikroORM migration whose up() installs
nestjs-bemi's context triggers and whose down() removes them. Apply it with
\`npx mikro-orm migration:up\`, undo it with \`npx mikro-orm migration:down\`.

Options:
  --path <dir>                  Directory of the migration, relative to the current directory.
                                Default: migrations.pathTs (else .path) of the app's MikroORM
                                config when found, else <sourceRoot>/migrations (src/migrations).
  --schemas <a,b>               Schemas whose tables are tracked. Default: public.
  --no-replica-identity-full    Leave REPLICA IDENTITY as it is (default: set it to FULL, so
                                updates and deletes carry the whole old row).
  --name <name>                 File and class name suffix. Default: bemi.
  --force                       Write the migration even when the directory already has one
                                (Migration*_bemi.ts, or Migration<timestamp>_<name>.ts for
                                --name); without it the command refuses and writes nothing.
  --dry-run                     Print the file instead of writing it.
  -h, --help                    Show this help.
`;

/** `nestjs-bemi migration:create`: writes the same file as the `migration` schematic. */
export async function runMigrationCreateCommand(argv: string[], io: CliIo = processIo): Promise<number> {
  const args = parseMigrationCreateArgs(argv);
  if (args.help) {
    io.out(MIGRATION_CREATE_HELP);
    return 0;
  }
  const read: ReadProjectFile = (path) => {
    try {
      return readFileSync(join(io.cwd, path), 'utf8');
    } catch {
      return undefined;
    }
  };
  let directory = args.path;
  let origin = '';
  if (directory === undefined) {
    const found = resolveMigrationsDirectory(read, { sourceRoot: nestSourceRoot(read) });
    directory = found.path;
    origin = found.foundIn ? ` (the migrations path of ${found.foundIn})` : ' (default; no MikroORM migrations path found)';
  }
  const file = renderBemiMigrationFile({
    schemas: args.schemas,
    replicaIdentityFull: args.replicaIdentityFull,
    name: args.name,
    generatedBy: ['npx nestjs-bemi migration:create', ...argv].join(' '),
  });
  const target = resolve(io.cwd, directory, file.fileName);
  const shown = displayPath(io.cwd, target);
  if (!args.force) {
    // A second copy would run the same up() twice and, rolled back, remove the triggers the first installed.
    const existing = existingBemiMigrations(listDirectory(resolve(io.cwd, directory)), args.name);
    if (existing.length > 0) {
      const names = existing.map((f) => displayPath(io.cwd, resolve(io.cwd, directory!, f))).join(', ');
      throw new Error(`${names} exists already, so no second trigger migration was written (pass --force to write one anyway, or --name <other> for a migration of its own)`);
    }
  }
  if (args.dryRun) {
    io.out(`Would create ${shown}${origin}:\n`);
    io.out(file.content);
    return 0;
  }
  try {
    mkdirSync(resolve(io.cwd, directory), { recursive: true });
    writeFileSync(target, file.content, { flag: 'wx' });
  } catch (error) {
    throw new Error(`cannot write ${shown}: ${oneLineReason(error)}`);
  }
  io.out(`Created ${shown}${origin}.`);
  io.out('Next: npx mikro-orm migration:up (needs PostgreSQL 14+ with wal_level=logical); undo with npx mikro-orm migration:down.');
  io.out('Then record the changes: npx nestjs-bemi capture --database-url <database url> (see npx nestjs-bemi capture --help).');
  return 0;
}

interface MigrationCreateArgs {
  help: boolean;
  path?: string;
  schemas: string[];
  replicaIdentityFull: boolean;
  name?: string;
  dryRun: boolean;
  force: boolean;
}

export function parseMigrationCreateArgs(argv: string[]): MigrationCreateArgs {
  const values = parseCommandLine(argv, {
    path: { type: 'string' },
    schemas: { type: 'string' },
    'replica-identity-full': { type: 'boolean' },
    'no-replica-identity-full': { type: 'boolean' },
    name: { type: 'string' },
    'dry-run': { type: 'boolean' },
    force: { type: 'boolean' },
    help: { type: 'boolean', short: 'h' },
  });
  if (values['replica-identity-full'] && values['no-replica-identity-full']) {
    throw new UsageError('--replica-identity-full and --no-replica-identity-full contradict each other');
  }
  for (const key of ['path', 'schemas', 'name'] as const) {
    if (typeof values[key] === 'string' && (values[key] as string).trim() === '') throw new UsageError(`--${key} needs a non-empty value`);
  }
  let schemas: string[];
  try {
    schemas = parseSchemaList(values.schemas as string | undefined);
  } catch (error) {
    throw new UsageError(`--${oneLineReason(error)}`);
  }
  for (const schema of schemas) {
    if (schema.length > 63) throw new UsageError(`--schemas: "${schema}" is longer than PostgreSQL's 63-character limit for names`);
  }
  return {
    help: values.help === true,
    path: values.path as string | undefined,
    schemas,
    replicaIdentityFull: values['no-replica-identity-full'] ? false : values['replica-identity-full'] ? true : DEFAULT_REPLICA_IDENTITY_FULL,
    name: values.name as string | undefined,
    dryRun: values['dry-run'] === true,
    force: values.force === true,
  };
}

/** The `sourceRoot` of nest-cli.json, if the app has one. */
function nestSourceRoot(read: ReadProjectFile): string | undefined {
  const text = read('nest-cli.json');
  if (!text) return undefined;
  try {
    const root = JSON.parse(text)?.sourceRoot;
    return typeof root === 'string' && root ? root : undefined;
  } catch {
    return undefined;
  }
}

/** File names in a directory; none when it does not exist (yet). */
function listDirectory(directory: string): string[] {
  try {
    return readdirSync(directory);
  } catch {
    return [];
  }
}

function displayPath(cwd: string, target: string): string {
  const rel = relative(cwd, target);
  return rel.startsWith('..') ? target : rel.split(sep).join('/');
}
