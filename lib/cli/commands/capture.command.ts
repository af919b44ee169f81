import { readFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { Client } from 'pg';
import { quoteIdent } from '../shared/sql-quote';
import { compileRules } from '../rules/rules-compiler';
import type { BemiRules, CompiledRules } from '../rules/rules.interfaces';
import { resolveCaptureOptions, type BemiCaptureOptions, type CaptureLogger } from '../options/capture-options';
import { DEFAULT_PUBLICATION_NAME } from '../options/defaults';
import { BemiCaptureWorker } from './capture.worker';
import { newTablePublisherSql } from './new-table-publisher';
import { chooseDefaultSlot } from './source-setup';

const CAPTURE_HELP = `Usage: nestjs-bemi capture --source <url> [options]

Streams the source database's changes (with their nestjs-bemi context) into the "changes" table.
Runs until SIGTERM/SIGINT, then stores and acknowledges what it received and exits 0.

Options:
  --source <url>             Tracked database (role with REPLICATION). Default: $BEMI_CAPTURE_SOURCE, then $DATABASE_URL.
  --destination <url>        Database receiving "changes". Default: the source.
  --schema <name>            Schema of "changes" in the destination. Default: public.
  --schemas <a,b>            Source schemas to capture. Default: public.
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
  -h, --help                 Show this help.
`;

const DROP_HELP = `Usage: nestjs-bemi capture:drop-slot --source <url> [--slot <name>] [--publication <name>] [--keep-publication]

Drops the capture worker's replication slot (and its publication with its new-table event
trigger), on purpose. Changes committed after this and before capture starts again are NOT
recorded. Stop the worker first.

Options:
  --source <url>        Tracked database. Default: $BEMI_CAPTURE_SOURCE, then $DATABASE_URL.
  --slot <name>         Default: the capture default of this database (nestjs_bemi_<database>, or nestjs_bemi).
                        Only a slot of the database --source connects to is dropped.
  --publication <name>  Default: nestjs_bemi.
  --keep-publication    Leave the publication in place.
  -h, --help            Show this help.
`;

/** Console logger with timestamps: progress to stdout, problems to stderr. */
export const consoleCaptureLogger: CaptureLogger = {
  log: (m) => process.stdout.write(`${new Date().toISOString()} [capture] ${m}\n`),
  warn: (m) => process.stderr.write(`${new Date().toISOString()} [capture] WARN ${m}\n`),
  error: (m) => process.stderr.write(`${new Date().toISOString()} [capture] ERROR ${m}\n`),
};

/**
 * `nestjs-bemi capture`: runs the worker until SIGTERM/SIGINT. Resolves with the exit code
 * (0 after a clean stop, 1 when it cannot start, 2 on bad arguments).
 */
export async function runCaptureCommand(argv: string[]): Promise<number> {
  let options: BemiCaptureOptions;
  try {
    const { values } = parseArgs({
      args: argv,
      allowPositionals: false,
      options: {
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
        help: { type: 'boolean', short: 'h' },
      },
    });
    if (values.help) {
      process.stdout.write(CAPTURE_HELP);
      return 0;
    }
    options = {
      source: values.source ?? process.env.BEMI_CAPTURE_SOURCE ?? process.env.DATABASE_URL,
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
      logger: consoleCaptureLogger,
      rules: values.rules === undefined ? undefined : readRules(values.rules),
    };
    for (const key of Object.keys(options) as Array<keyof BemiCaptureOptions>) if (options[key] === undefined) delete options[key];
    if (!options.source) throw new Error('--source is required (or set BEMI_CAPTURE_SOURCE / DATABASE_URL).');
  } catch (e) {
    process.stderr.write(`${message(e)}\n\n${CAPTURE_HELP}`);
    return 2;
  }

  let worker: BemiCaptureWorker;
  try {
    worker = new BemiCaptureWorker(resolveCaptureOptions(options));
    await worker.start();
  } catch (e) {
    process.stderr.write(`nestjs-bemi capture could not start: ${message(e)}\n`);
    return 1;
  }
  consoleCaptureLogger.log(`Streaming (slot "${worker.status().slotName}"). Stop with SIGTERM or Ctrl-C.`);
  const signal = await new Promise<NodeJS.Signals>((resolve) => {
    process.once('SIGTERM', () => resolve('SIGTERM'));
    process.once('SIGINT', () => resolve('SIGINT'));
  });
  consoleCaptureLogger.log(`${signal} received: storing and acknowledging what was received, then exiting.`);
  await worker.stop();
  const s = worker.status();
  consoleCaptureLogger.log(`Stopped at ${s.confirmedPosition ?? 'the start'} after ${s.changesWritten} changes.`);
  return 0;
}

/** Reads and checks a rules file; the HMAC key may come from the environment, not the file. */
function readRules(path: string): CompiledRules {
  let parsed: BemiRules;
  try {
    parsed = JSON.parse(readFileSync(path, 'utf8')) as BemiRules;
  } catch (e) {
    throw new Error(`--rules ${path}: cannot read it as JSON (${message(e)}).`);
  }
  const hmacKey = parsed && typeof parsed === 'object' ? (parsed.hmacKey ?? process.env.BEMI_HMAC_KEY) : undefined;
  try {
    return compileRules(hmacKey === undefined ? parsed : { ...parsed, hmacKey });
  } catch (e) {
    throw new Error(`--rules ${path}: ${message(e)}`);
  }
}

/** `nestjs-bemi capture:drop-slot`: the only way this package drops a slot. */
export async function runDropSlotCommand(argv: string[]): Promise<number> {
  let values: { source?: string; slot?: string; publication?: string; 'keep-publication'?: boolean; help?: boolean };
  try {
    values = parseArgs({
      args: argv,
      options: {
        source: { type: 'string' },
        slot: { type: 'string' },
        publication: { type: 'string' },
        'keep-publication': { type: 'boolean' },
        help: { type: 'boolean', short: 'h' },
      },
    }).values;
  } catch (e) {
    process.stderr.write(`${message(e)}\n\n${DROP_HELP}`);
    return 2;
  }
  if (values.help) {
    process.stdout.write(DROP_HELP);
    return 0;
  }
  const source = values.source ?? process.env.BEMI_CAPTURE_SOURCE ?? process.env.DATABASE_URL;
  if (!source) {
    process.stderr.write(`--source is required (or set BEMI_CAPTURE_SOURCE / DATABASE_URL).\n\n${DROP_HELP}`);
    return 2;
  }
  const publication = values.publication ?? DEFAULT_PUBLICATION_NAME;
  const client = new Client({ connectionString: source });
  try {
    await client.connect();
    const database = (await client.query<{ db: string }>('SELECT current_database() AS db')).rows[0].db;
    const slot = values.slot ?? (await chooseDefaultSlot(async (sql) => (await client.query(sql)).rows));
    const { rows } = await client.query<{ active_pid: number | null; database: string | null }>(
      `SELECT active_pid, database FROM pg_catalog.pg_replication_slots WHERE slot_name = $1`,
      [slot],
    );
    if (rows.length === 0) {
      process.stdout.write(`No replication slot "${slot}": nothing to drop.\n`);
    } else if (rows[0].database !== database) {
      // Slots are per server: never drop another database's trail from here.
      process.stderr.write(`Replication slot "${slot}" belongs to ${rows[0].database === null ? 'no database (a physical slot)' : `database "${rows[0].database}"`}, not "${database}": not dropped.\n`);
      return 1;
    } else if (rows[0].active_pid !== null) {
      process.stderr.write(`Replication slot "${slot}" is in use (walsender pid ${rows[0].active_pid}). Stop the capture worker first.\n`);
      return 1;
    } else {
      await client.query(`SELECT pg_catalog.pg_drop_replication_slot($1)`, [slot]);
      process.stdout.write(`Dropped replication slot "${slot}". Changes made from now until capture restarts will not be recorded.\n`);
    }
    if (!values['keep-publication']) {
      await client.query(`DROP PUBLICATION IF EXISTS ${quoteIdent(publication)}`);
      // The event trigger that fed new tables to it goes with it (absent when never installed).
      await client.query(newTablePublisherSql({ publicationName: publication, schemas: ['public'], excludeTables: [] }).down);
      process.stdout.write(`Dropped publication "${publication}" and its new-table event trigger (if they existed).\n`);
    }
    return 0;
  } catch (e) {
    process.stderr.write(`capture:drop-slot failed: ${message(e)}\n`);
    return 1;
  } finally {
    await client.end().catch(() => undefined);
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

function message(e: unknown): string {
  return e instanceof Error ? e.message : String(e);
}
