import { Client } from 'pg';
import { verifyTrail, type VerifyDatabase } from '../../history/trail-verify';
import type { TrailChainHead, TrailVerifyProgress, TrailVerifyResult } from '../../history/trail-verify.interfaces';
import { MIN_CHAIN_KEY_LENGTH } from '../../options/chain-options';
import { quoteIdent } from '../../shared/sql-quote';
import { DEFAULT_SCHEMA } from '../../shared/postgres-names';
import { CHANGES_TABLE } from '../../trail/changes-table';
import { parseCommandLine, processIo, UsageError, type CliIo } from '../cli-io';
import { databaseUrl, databaseUrlRequired } from '../database-url';

/** Where verify reads the chain key when --key is not given. */
export const CHAIN_KEY_ENV = 'BEMI_CHAIN_KEY';

export const VERIFY_HELP = `Usage: nestjs-bemi verify [options]

Checks the hash chain of the "changes" table (capture --chain): reads it in stream order, a page
at a time, and links every change again. Prints the chain's head: keep it outside the database and
pass it back with --expect-head, or rows cut from the end of the trail go unseen.

Exit code 0 when the chain holds, 1 when it is broken (the first broken link is printed) or not
enabled, 2 on a bad command line.

Options:
  --database-url <url>    Database holding "changes". Default: $DATABASE_URL.
  --schema <name>         Schema of "changes". Default: public.
  --key <key>             The chain's HMAC key (capture's chain.key). Default: $${CHAIN_KEY_ENV}.
                          Other users of the machine may see arguments: prefer the environment.
  --expect-head <head>    A head an earlier verify printed (<database>@<commit_position>/<seq>:<hash>);
                          repeat for several databases.
  --page-size <n>         Rows per query. Default: 5000.
  -h, --help              Show this help.
`;

/** `nestjs-bemi verify`: BemiHistory.verify() on a plain connection. */
export async function runVerifyCommand(argv: string[], io: CliIo = processIo): Promise<number> {
  const args = parseVerifyArgs(argv);
  if (args.help) {
    io.out(VERIFY_HELP);
    return 0;
  }
  const url = databaseUrl('verify', { 'database-url': args.databaseUrl }, io);
  if (!url) throw new UsageError(databaseUrlRequired());
  const key = args.key ?? process.env[CHAIN_KEY_ENV] ?? undefined;
  if (key !== undefined && key.length < MIN_CHAIN_KEY_LENGTH) {
    throw new UsageError(`the chain key (${args.key !== undefined ? '--key' : `$${CHAIN_KEY_ENV}`}) must have at least ${MIN_CHAIN_KEY_LENGTH} characters, as capture's chain.key`);
  }
  const client = new Client({ connectionString: url });
  await client.connect();
  let result: TrailVerifyResult;
  const progress = progressReporter(io);
  try {
    result = await verifyTrail(pgVerifyDatabase(client), args.schema ?? DEFAULT_SCHEMA, CHANGES_TABLE, { key, expectHead: args.expectHeads, pageSize: args.pageSize, onProgress: progress.update });
  } finally {
    progress.done();
    await client.end().catch(() => undefined);
  }
  return report(result, key !== undefined, io);
}

function report(result: TrailVerifyResult, keyed: boolean, io: CliIo): number {
  const counts = `${result.rows} change(s) read: ${result.chained} chained, ${result.unchained} from before the chain began, ${result.unverifiable} unverifiable (before a retention anchor)`;
  if (result.status === 'not-enabled') {
    io.err(`nestjs-bemi verify: ${result.detail}`);
    return 1;
  }
  for (const a of result.anchors) io.out(`Retention anchor: ${a.database}@${a.commitPosition}/${a.seq} (changes committed up to ${a.committedAt} were pruned; the chain is checked from there).`);
  if (result.status === 'broken') {
    const b = result.broken;
    io.out(`Chain BROKEN (${b.kind}) at ${b.database}@${b.position.commitPosition}/${b.position.seq}: ${b.detail}.`);
    io.out(counts);
    return 1;
  }
  io.out(`Chain intact (${keyed ? 'HMAC-SHA256, keyed' : 'SHA-256, unkeyed'}): ${counts}.`);
  for (const h of result.heads) io.out(`Head: ${formatHead(h)}`);
  if (result.heads.length) io.out('Keep the head outside this database and pass it as --expect-head next time: verify alone cannot see changes cut from the end.');
  return 0;
}

/** A bar on a terminal, else a line every 10 s (a log file). */
function progressReporter(io: CliIo): { update: (p: TrailVerifyProgress) => void; done: () => void } {
  const terminal = io.terminal;
  let lastLine = Date.now();
  let drawn = false;
  return {
    update: (p) => {
      const total = Math.max(p.estimatedRows, p.rows);
      const share = total > 0 ? p.rows / total : 0;
      if (terminal) {
        const width = 30;
        const filled = Math.round(share * width);
        terminal(`\r[${'#'.repeat(filled)}${'.'.repeat(width - filled)}] ${Math.floor(share * 100)}% ${p.rows}/${total} changes`);
        drawn = true;
      } else if (Date.now() - lastLine >= 10_000) {
        lastLine = Date.now();
        io.err(`${new Date().toISOString()} [verify] ${p.rows} of about ${total} changes checked`);
      }
    },
    done: () => {
      if (drawn) terminal?.('\n');
    },
  };
}

/** verify's statements on a plain pg connection ($n placeholders). */
export function pgVerifyDatabase(client: Client): VerifyDatabase {
  return {
    ident: quoteIdent,
    run: async <R>(build: (p: (value: unknown) => string) => string): Promise<R[]> => {
      const params: unknown[] = [];
      const sql = build((value) => {
        params.push(value);
        return `$${params.length}`;
      });
      return (await client.query(sql, params)).rows as R[];
    },
  };
}

export function formatHead(head: TrailChainHead): string {
  return `${head.database}@${head.commitPosition}/${head.seq}:${head.hash}`;
}

/** `<database>@<commit_position>/<seq>:<hash>` (the database name may hold any character, so it is read from the right). */
export function parseHead(text: string): TrailChainHead {
  const m = /^(.+)@(\d+)\/(\d+):([0-9a-fA-F]{64})$/.exec(text);
  if (!m) throw new UsageError(`--expect-head: "${text}" is not a head; write it as verify prints it: <database>@<commit_position>/<seq>:<64 hex digits>`);
  return { database: m[1], commitPosition: m[2], seq: Number(m[3]), hash: m[4].toLowerCase() };
}

interface VerifyArgs {
  help: boolean;
  databaseUrl?: string;
  schema?: string;
  key?: string;
  expectHeads?: TrailChainHead[];
  pageSize?: number;
}

export function parseVerifyArgs(argv: string[]): VerifyArgs {
  const values = parseCommandLine(argv, {
    'database-url': { type: 'string' },
    schema: { type: 'string' },
    key: { type: 'string' },
    'expect-head': { type: 'string', multiple: true },
    'page-size': { type: 'string' },
    help: { type: 'boolean', short: 'h' },
  }) as { 'database-url'?: string; schema?: string; key?: string; 'expect-head'?: string[]; 'page-size'?: string; help?: boolean };
  if (values.help) return { help: true };
  for (const flag of ['database-url', 'schema', 'key'] as const) {
    if (values[flag] !== undefined && values[flag]!.trim() === '') throw new UsageError(`--${flag} needs a non-empty value`);
  }
  let pageSize: number | undefined;
  const raw = values['page-size'];
  if (raw !== undefined) {
    pageSize = /^\s*\d+\s*$/.test(raw) ? Number(raw) : NaN;
    if (!Number.isInteger(pageSize) || pageSize < 1 || pageSize > 100_000) throw new UsageError(`--page-size must be a whole number from 1 to 100000, got "${raw}"`);
  }
  return { help: false, databaseUrl: values['database-url'], schema: values.schema, key: values.key, expectHeads: values['expect-head']?.map(parseHead), pageSize };
}
