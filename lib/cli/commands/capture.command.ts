import { readFileSync } from 'node:fs';
import { compileRules } from '../../rules/rules-compiler';
import type { BemiRules, CompiledRules } from '../../rules/rules.interfaces';
import type { BemiCaptureOptions, CaptureLogger } from '../../options/capture-options';
import { BemiCaptureWorker } from '../../capture/capture.worker';
import { errorMessage, parseCommandLine, processIo, type CliIo } from '../cli-io';
import { CAPTURE_DATABASE_ENV, databaseUrl, databaseUrlRequired } from '../database-url';

export const CAPTURE_HELP = `Usage: nestjs-bemi capture --database-url <url> [options]

Streams the tracked database's changes (with their nestjs-bemi context) into the "changes" table.
Runs until SIGTERM/SIGINT, then stores and acknowledges what it received and exits 0.

Options:
  --database-url <url>       Tracked database (role with REPLICATION). Default: $BEMI_CAPTURE_SOURCE, then $DATABASE_URL.
                             (--source <url> is its deprecated name.)
  --destination <url>        Database receiving "changes". Default: the tracked database.
  --schema <name>            Schema of "changes" in the destination. Default: public.
  --schemas <a,b>            Tracked schemas to capture. Default: public.
  --exclude-tables <a,b>     Tables never captured (besides changes, mikro_orm_migrations, _bemi*).
  --slot <name>              Replication slot (created if missing, never dropped). Default: nestjs_bemi_<database>
                             (or nestjs_bemi when the database already has a slot of that name).
  --publication <name>       Publication (created and kept in sync). Default: nestjs_bemi.
  --no-create-table          Refuse to start when "changes" is missing instead of creating it.
  --index-before-after       When creating "changes", also index before/after (slower ingest).
  --batch-size <n>           Rows held in memory before a write. Default: 2000.
  --progress-interval <ms>   Progress log interval; 0 turns it off. Default: 5000.
  --heartbeat-interval <ms>  Status update / idle heartbeat interval. Default: 10000.
  --rules <file.json>        Redaction and ignore rules (docs/redaction.md), with column names.
                             The hmacKey may come from $BEMI_HMAC_KEY instead of the file.
  --trusted-roles <a,b>      Database roles whose context is believed (docs/security.md). Default: the
                             trigger functions' owners and the role of --database-url.
  --chain                    Link every change to the one before it (a hash chain; nestjs-bemi verify checks it).
                             With $BEMI_CHAIN_KEY set, links are HMAC-SHA256 with that key (docs/verify.md).
  -h, --help                 Show this help.
`;

/** The worker's logger for the bin, with timestamps: progress to io.out, problems to io.err. */
export function cliCaptureLogger(io: CliIo): CaptureLogger {
  const stamp = () => new Date().toISOString();
  return {
    log: (m) => io.out(`${stamp()} [capture] ${m}`),
    warn: (m) => io.err(`${stamp()} [capture] WARN ${m}`),
    error: (m) => io.err(`${stamp()} [capture] ERROR ${m}`),
  };
}

type CaptureFlags = Partial<
  Record<
    'database-url' | 'source' | 'destination' | 'schema' | 'schemas' | 'exclude-tables' | 'slot' | 'publication' | 'batch-size' | 'progress-interval' | 'heartbeat-interval' | 'rules' | 'trusted-roles',
    string
  >
> & { 'no-create-table'?: boolean; 'index-before-after'?: boolean; chain?: boolean; help?: boolean };

/**
 * `nestjs-bemi capture`: runs the worker until SIGTERM/SIGINT. Resolves with the exit code
 * (0 after a clean stop, 1 when it cannot start, 2 on bad arguments).
 */
export async function runCaptureCommand(argv: string[], io: CliIo = processIo): Promise<number> {
  const logger = cliCaptureLogger(io);
  let options: BemiCaptureOptions;
  try {
    const values = parseCommandLine(argv, {
      'database-url': { type: 'string' },
      source: { type: 'string' },
      destination: { type: 'string' },
      schema: { type: 'string' },
      schemas: { type: 'string' },
      'exclude-tables': { type: 'string' },
      slot: { type: 'string' },
      publication: { type: 'string' },
      'no-create-table': { type: 'boolean' },
      'index-before-after': { type: 'boolean' },
      'batch-size': { type: 'string' },
      'progress-interval': { type: 'string' },
      'heartbeat-interval': { type: 'string' },
      rules: { type: 'string' },
      'trusted-roles': { type: 'string' },
      chain: { type: 'boolean' },
      help: { type: 'boolean', short: 'h' },
    }) as CaptureFlags;
    if (values.help) {
      io.out(CAPTURE_HELP);
      return 0;
    }
    options = {
      source: databaseUrl('capture', values, io, CAPTURE_DATABASE_ENV),
      destination: values.destination,
      schema: values.schema,
      schemas: list(values.schemas),
      excludeTables: list(values['exclude-tables']),
      slotName: values.slot,
      publicationName: values.publication,
      ensureSchema: !values['no-create-table'],
      indexBeforeAfter: values['index-before-after'] ?? false,
      batchSize: number(values['batch-size'], '--batch-size'),
      progressIntervalMs: number(values['progress-interval'], '--progress-interval'),
      heartbeatIntervalMs: number(values['heartbeat-interval'], '--heartbeat-interval'),
      logger,
      rules: values.rules === undefined ? undefined : readRules(values.rules),
      trustedRoles: list(values['trusted-roles']),
      // The key only from the environment: arguments are visible to other users of the machine.
      chain: values.chain ? (process.env.BEMI_CHAIN_KEY ? { key: process.env.BEMI_CHAIN_KEY } : true) : undefined,
    };
    for (const key of Object.keys(options) as Array<keyof BemiCaptureOptions>) if (options[key] === undefined) delete options[key];
    if (!options.source) throw new Error(`${databaseUrlRequired(CAPTURE_DATABASE_ENV)}.`);
  } catch (e) {
    io.err(`nestjs-bemi capture: ${errorMessage(e)}\n\n${CAPTURE_HELP}`);
    return 2;
  }

  let worker: BemiCaptureWorker;
  try {
    worker = BemiCaptureWorker.fromOptions(options);
    await worker.start();
  } catch (e) {
    io.err(`nestjs-bemi capture could not start: ${errorMessage(e)}`);
    return 1;
  }
  logger.log(`Streaming (slot "${worker.status().slotName}"). Stop with SIGTERM or Ctrl-C.`);
  const signal = await nextStopSignal();
  logger.log(`${signal} received: storing and acknowledging what was received, then exiting.`);
  await worker.stop();
  const s = worker.status();
  logger.log(`Stopped at ${s.confirmedPosition ?? 'the start'} after ${s.changesWritten} changes.`);
  return 0;
}

/** The first SIGTERM or SIGINT from now; the listener for the other is removed then. */
function nextStopSignal(): Promise<NodeJS.Signals> {
  return new Promise((resolve) => {
    const on = (signal: NodeJS.Signals) => () => {
      process.off('SIGTERM', onTerm);
      process.off('SIGINT', onInt);
      resolve(signal);
    };
    const onTerm = on('SIGTERM');
    const onInt = on('SIGINT');
    process.once('SIGTERM', onTerm);
    process.once('SIGINT', onInt);
  });
}

/** Reads and checks a rules file; the HMAC key may come from the environment, not the file. */
function readRules(path: string): CompiledRules {
  let parsed: BemiRules;
  try {
    parsed = JSON.parse(readFileSync(path, 'utf8')) as BemiRules;
  } catch (e) {
    throw new Error(`--rules ${path}: cannot read it as JSON (${errorMessage(e)}).`);
  }
  const hmacKey = parsed && typeof parsed === 'object' ? (parsed.hmacKey ?? process.env.BEMI_HMAC_KEY) : undefined;
  try {
    return compileRules(hmacKey === undefined ? parsed : { ...parsed, hmacKey });
  } catch (e) {
    throw new Error(`--rules ${path}: ${errorMessage(e)}`);
  }
}

function list(value: string | undefined): string[] | undefined {
  return value === undefined ? undefined : value.split(',').map((s) => s.trim()).filter(Boolean);
}

function number(value: string | undefined, flag: string): number | undefined {
  if (value === undefined) return undefined;
  const n = Number(value);
  if (!Number.isInteger(n)) throw new Error(`${flag} must be a whole number, got "${value}".`);
  return n;
}
