import { pruneChanges, type RetentionLogger } from '../../retention/prune-changes';
import { DEFAULT_PRUNE_BATCH_SIZE, MAX_PRUNE_BATCH_SIZE } from '../../options/defaults';
import { parseRetentionDuration } from '../../options/duration';
import { parseCommandLine, processIo, UsageError, type CliIo } from '../cli-io';
import { databaseUrl, databaseUrlRequired } from '../database-url';

export const PRUNE_HELP = `Usage: nestjs-bemi prune --older-than <duration> [options]

Deletes changes committed longer ago than <duration> from the "changes" table, in batches of
--batch-size rows (each its own short transaction), printing one line per batch. On a "changes"
table partitioned by month of committed_at, partitions wholly older are detached and dropped.

Options:
  --older-than <duration>  Age of the changes to delete: 365d, 12h, 30m, 90s or 2w. Required.
  --table <name>           Only changes of this table (the "table" column); repeat for several.
  --dry-run                Count what would be deleted; delete nothing.
  --batch-size <n>         Rows per batch. Default: ${DEFAULT_PRUNE_BATCH_SIZE}.
  --database-url <url>     Database holding "changes" (capture's --destination, when it has one). Default: $DATABASE_URL.
  --schema <name>          Schema of "changes". Default: public.
  -h, --help               Show this help.
`;

/** `nestjs-bemi prune`: the same pruning the module's retention job runs, once. */
export async function runPruneCommand(argv: string[], io: CliIo = processIo): Promise<number> {
  const args = parsePruneArgs(argv);
  if (args.help) {
    io.out(PRUNE_HELP);
    return 0;
  }
  const url = databaseUrl('prune', { 'database-url': args.databaseUrl }, io);
  if (!url) throw new UsageError(databaseUrlRequired());
  const stamp = () => new Date().toISOString();
  const logger: RetentionLogger = {
    log: (m) => io.out(`${stamp()} [prune] ${m}`),
    warn: (m) => io.err(`${stamp()} [prune] WARN ${m}`),
  };
  const result = await pruneChanges(url, {
    schema: args.schema,
    maxAge: args.olderThan,
    tables: args.tables,
    batchSize: args.batchSize,
    dryRun: args.dryRun,
    logger,
  });
  if (result.skipped) return 0;
  const partitions = result.partitions.length ? ` (${result.partitions.length} partition(s) dropped whole${args.dryRun ? ' in a real run' : ''})` : '';
  io.out(
    args.dryRun
      ? `Dry run: ${result.rows} changes older than ${args.olderThan} would be deleted${partitions}; nothing was deleted.`
      : `Deleted ${result.rows} changes older than ${args.olderThan} in ${result.batches} batch(es)${partitions}, ${result.elapsedMs} ms.`,
  );
  return 0;
}

interface PruneArgs {
  help: boolean;
  olderThan: string;
  tables?: string[];
  dryRun: boolean;
  batchSize?: number;
  databaseUrl?: string;
  schema?: string;
}

export function parsePruneArgs(argv: string[]): PruneArgs {
  const values = parseCommandLine(argv, {
    'older-than': { type: 'string' },
    table: { type: 'string', multiple: true },
    'dry-run': { type: 'boolean' },
    'batch-size': { type: 'string' },
    'database-url': { type: 'string' },
    schema: { type: 'string' },
    help: { type: 'boolean', short: 'h' },
  }) as { 'older-than'?: string; table?: string[]; 'dry-run'?: boolean; 'batch-size'?: string; 'database-url'?: string; schema?: string; help?: boolean };
  if (values.help) return { help: true, olderThan: '', dryRun: false };
  const olderThan = values['older-than'];
  if (olderThan === undefined) throw new UsageError('--older-than is required, e.g. --older-than 365d');
  try {
    parseRetentionDuration(olderThan, '--older-than');
  } catch {
    throw new UsageError(`--older-than: "${olderThan}" is not a duration; write a whole number followed by s, m, h, d or w, e.g. 365d`);
  }
  let batchSize: number | undefined;
  const raw = values['batch-size'];
  if (raw !== undefined) {
    batchSize = /^\s*\d+\s*$/.test(raw) ? Number(raw) : NaN;
    if (!Number.isInteger(batchSize) || batchSize < 1 || batchSize > MAX_PRUNE_BATCH_SIZE) {
      throw new UsageError(`--batch-size must be a whole number from 1 to ${MAX_PRUNE_BATCH_SIZE}, got "${raw}"`);
    }
  }
  const tables = values.table?.flatMap((t) => t.split(',')).map((t) => t.trim()).filter(Boolean);
  if (values.table && tables!.length === 0) throw new UsageError('--table needs a table name');
  for (const key of ['database-url', 'schema'] as const) {
    if (values[key] !== undefined && values[key]!.trim() === '') throw new UsageError(`--${key} needs a non-empty value`);
  }
  return {
    help: false,
    olderThan,
    tables,
    dryRun: values['dry-run'] === true,
    batchSize,
    databaseUrl: values['database-url'],
    schema: values.schema,
  };
}
