import { Client } from 'pg';
import { quoteIdent } from '../../shared/sql-quote';
import { DEFAULT_PUBLICATION_NAME } from '../../options/defaults';
import { newTablePublisherSql } from '../../capture/new-table-publisher';
import { schemaRecorderSql } from '../../capture/schema-log.sql';
import { chooseDefaultSlot } from '../../capture/source-setup';
import { errorMessage, parseCommandLine, processIo, type CliIo } from '../cli-io';
import { CAPTURE_DATABASE_ENV, databaseUrl, databaseUrlRequired } from '../database-url';

export const DROP_SLOT_HELP = `Usage: nestjs-bemi capture:drop-slot --database-url <url> [--slot <name>] [--publication <name>] [--keep-publication]

Drops the capture worker's replication slot (and its publication with its new-table event
trigger), on purpose. Changes committed after this and before capture starts again are NOT
recorded. Stop the worker first.

Options:
  --database-url <url>  Tracked database. Default: $BEMI_CAPTURE_SOURCE, then $DATABASE_URL.
                        (--source <url> is its deprecated name.)
  --slot <name>         Default: the capture default of this database (nestjs_bemi_<database>, or nestjs_bemi).
                        Only a slot of the database --database-url connects to is dropped.
  --publication <name>  Default: nestjs_bemi.
  --keep-publication    Leave the publication in place.
  -h, --help            Show this help.
`;

/** `nestjs-bemi capture:drop-slot`: the only way this package drops a slot. */
export async function runDropSlotCommand(argv: string[], io: CliIo = processIo): Promise<number> {
  let values: { 'database-url'?: string; source?: string; slot?: string; publication?: string; 'keep-publication'?: boolean; help?: boolean };
  try {
    values = parseCommandLine(argv, {
      'database-url': { type: 'string' },
      source: { type: 'string' },
      slot: { type: 'string' },
      publication: { type: 'string' },
      'keep-publication': { type: 'boolean' },
      help: { type: 'boolean', short: 'h' },
    });
  } catch (e) {
    io.err(`nestjs-bemi capture:drop-slot: ${errorMessage(e)}\n\n${DROP_SLOT_HELP}`);
    return 2;
  }
  if (values.help) {
    io.out(DROP_SLOT_HELP);
    return 0;
  }
  let url: string | undefined;
  try {
    url = databaseUrl('capture:drop-slot', values, io, CAPTURE_DATABASE_ENV);
  } catch (e) {
    io.err(`nestjs-bemi capture:drop-slot: ${errorMessage(e)}\n\n${DROP_SLOT_HELP}`);
    return 2;
  }
  if (!url) {
    io.err(`nestjs-bemi capture:drop-slot: ${databaseUrlRequired(CAPTURE_DATABASE_ENV)}.\n\n${DROP_SLOT_HELP}`);
    return 2;
  }
  const publication = values.publication ?? DEFAULT_PUBLICATION_NAME;
  const client = new Client({ connectionString: url });
  try {
    await client.connect();
    const database = (await client.query<{ db: string }>('SELECT current_database() AS db')).rows[0].db;
    const slot = values.slot ?? (await chooseDefaultSlot(async (sql) => (await client.query(sql)).rows));
    const { rows } = await client.query<{ active_pid: number | null; database: string | null }>(
      `SELECT active_pid, database FROM pg_catalog.pg_replication_slots WHERE slot_name = $1`,
      [slot],
    );
    if (rows.length === 0) {
      io.out(`No replication slot "${slot}": nothing to drop.`);
    } else if (rows[0].database !== database) {
      // Slots are per server: never drop another database's trail from here.
      io.err(`Replication slot "${slot}" belongs to ${rows[0].database === null ? 'no database (a physical slot)' : `database "${rows[0].database}"`}, not "${database}": not dropped.`);
      return 1;
    } else if (rows[0].active_pid !== null) {
      io.err(`Replication slot "${slot}" is in use (walsender pid ${rows[0].active_pid}). Stop the capture worker first.`);
      return 1;
    } else {
      await client.query(`SELECT pg_catalog.pg_drop_replication_slot($1)`, [slot]);
      io.out(`Dropped replication slot "${slot}". Changes made from now until capture restarts will not be recorded.`);
    }
    if (!values['keep-publication']) {
      await client.query(`DROP PUBLICATION IF EXISTS ${quoteIdent(publication)}`);
      // The event triggers that fed new tables to it and its schema log go with it (absent when never installed).
      const triggers = { publicationName: publication, schemas: ['public'], excludeTables: [] };
      await client.query(newTablePublisherSql(triggers).down);
      await client.query(schemaRecorderSql(triggers).down);
      io.out(`Dropped publication "${publication}" and its event triggers (if they existed).`);
    }
    return 0;
  } catch (e) {
    io.err(`capture:drop-slot failed: ${errorMessage(e)}`);
    return 1;
  } finally {
    await client.end().catch(() => undefined);
  }
}
