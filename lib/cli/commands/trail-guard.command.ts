import { BemiError } from '../../shared/bemi-error';
import { DEFAULT_SCHEMA } from '../../shared/postgres-names';
import { quoteIdent } from '../../shared/sql-quote';
import { APPEND_ONLY_GUARD, bemiAppendOnlyGuardSql } from '../../trail/append-only';
import { CHANGES_TABLE } from '../../trail/changes-table';
import { parseCommandLine, processIo, UsageError, type CliIo } from '../cli-io';
import { databaseUrl, databaseUrlRequired } from '../database-url';
import { inTrailTransaction, shownName, trailMissingError, whoOwns } from './trail-roles.command';

export const TRAIL_GUARD_HELP = `Usage: nestjs-bemi trail:guard [options]

Installs the append-only guard (docs/security.md): a trigger on "changes" that refuses UPDATE,
DELETE and TRUNCATE outside retention's own runs. For a single-role setup it stops accidents (a
stray DELETE, a script run against the wrong database); it is no boundary against the role that
owns the trail: for that, use nestjs-bemi trail:roles. One transaction; idempotent. Run it as the
trail's owner or a superuser.

Options:
  --remove              Remove the guard instead.
  --schema <name>       Schema of "changes". Default: public.
  --database-url <url>  Database holding "changes". Default: $DATABASE_URL.
  --dry-run             Print the SQL (for psql or a migration) and connect to nothing.
  -h, --help            Show this help.
`;

/** `nestjs-bemi trail:guard`: bemiAppendOnlyGuardSql() `up` (or, with --remove, `down`) run once. */
export async function runTrailGuardCommand(argv: string[], io: CliIo = processIo): Promise<number> {
  const values = parseCommandLine(argv, {
    remove: { type: 'boolean' },
    schema: { type: 'string' },
    'database-url': { type: 'string' },
    'dry-run': { type: 'boolean' },
    help: { type: 'boolean', short: 'h' },
  }) as { remove?: boolean; schema?: string; 'database-url'?: string; 'dry-run'?: boolean; help?: boolean };
  if (values.help) {
    io.out(TRAIL_GUARD_HELP);
    return 0;
  }
  for (const key of ['database-url', 'schema'] as const) {
    if (values[key] !== undefined && values[key]!.trim() === '') throw new UsageError(`--${key} needs a non-empty value`);
  }
  const schema = values.schema ?? DEFAULT_SCHEMA;
  const sql = bemiAppendOnlyGuardSql({ schema })[values.remove ? 'down' : 'up'];
  if (values['dry-run']) {
    io.out(`BEGIN;\n${sql}COMMIT;\n-- Dry run: nothing was run. Pipe this to psql as the trail's owner or a superuser.`);
    return 0;
  }
  const url = databaseUrl('trail:guard', values, io);
  if (!url) throw new UsageError(databaseUrlRequired());
  const changes = `${quoteIdent(schema)}.${quoteIdent(CHANGES_TABLE)}`;
  const shown = shownName(schema, CHANGES_TABLE);
  const had = await inTrailTransaction(url, 'trail:guard', io, async (client) => {
    const { rows } = await client.query<{ exists: boolean; guarded: boolean }>(
      `SELECT pg_catalog.to_regclass($1) IS NOT NULL AS exists,
              EXISTS (SELECT FROM pg_catalog.pg_trigger WHERE tgrelid = pg_catalog.to_regclass($1) AND tgname = $2) AS guarded`,
      [changes, APPEND_ONLY_GUARD],
    );
    if (!rows[0].exists) throw trailMissingError(schema, shown);
    await client.query('SAVEPOINT bemi_trail');
    try {
      await client.query(sql);
    } catch (error) {
      if ((error as { code?: string }).code !== '42501') throw error;
      await client.query('ROLLBACK TO SAVEPOINT bemi_trail');
      const { me, owner } = await whoOwns(client, schema);
      throw new BemiError(
        `the connecting role "${me}" may not ${values.remove ? 'remove the guard from' : 'add the guard to'} ${shown} (PostgreSQL: ${(error as Error).message})`,
        `Run trail:guard as the trail's owner${owner ? ` "${owner}"` : ''} (the capture role, in the separated layout) or as a superuser; nothing was changed.`,
      );
    }
    return rows[0].guarded;
  });
  if (values.remove) io.out(had ? `Removed the append-only guard from ${shown}.` : `No append-only guard on ${shown}: nothing to remove.`);
  else io.out(`${had ? `The append-only guard was already on ${shown} (its function is refreshed)` : `Installed the append-only guard on ${shown}`}: UPDATE, DELETE and TRUNCATE of it are refused outside retention. It stops accidents, not its owner (docs/security.md).`);
  return 0;
}
