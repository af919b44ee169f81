import { Client } from 'pg';
import { BemiError } from '../../shared/bemi-error';
import { DEFAULT_SCHEMA } from '../../shared/postgres-names';
import { quoteIdent } from '../../shared/sql-quote';
import { APPEND_ONLY_GUARD, bemiTrailRolesSql, TRAIL_TABLES } from '../../trail/append-only';
import { CHANGES_TABLE } from '../../trail/changes-table';
import { parseCommandLine, processIo, UsageError, type CliIo } from '../cli-io';
import { databaseUrl, databaseUrlRequired } from '../database-url';

export const TRAIL_ROLES_HELP = `Usage: nestjs-bemi trail:roles --owner <role> --reader <role> [--reader <role>...] [options]

Sets up the recommended layout (docs/security.md): every trail table (changes and each of its
partitions, _bemi_capture_state, _bemi_schema_log, _bemi_retention_horizon, _bemi_chain_anchor) owned by the capture
role, and the readers (the application's role) granted SELECT on them and USAGE on the schema,
nothing else: they can no longer UPDATE, DELETE, INSERT into, TRUNCATE or disable triggers of the
trail. One transaction; idempotent. Run it as a superuser, or as a member of both the trail's
current owner and the new one.

Options:
  --owner <role>        The role capture and retention connect as; it will own the trail. Required.
  --reader <role>       A role that reads the trail (history); repeat for several. At least one.
  --schema <name>       Schema of the trail. Default: public.
  --database-url <url>  Database holding the trail (capture's --destination, when it has one). Default: $DATABASE_URL.
  --dry-run             Print the SQL (for psql or a migration) and connect to nothing.
  -h, --help            Show this help.

For a single-role setup, see nestjs-bemi trail:guard.
`;

/** `nestjs-bemi trail:roles`: bemiTrailRolesSql() run once, with errors in the words of its flags. */
export async function runTrailRolesCommand(argv: string[], io: CliIo = processIo): Promise<number> {
  const args = parseTrailRolesArgs(argv);
  if (args.help) {
    io.out(TRAIL_ROLES_HELP);
    return 0;
  }
  const sql = bemiTrailRolesSql({ owner: args.owner, readers: args.readers, schema: args.schema });
  if (args.dryRun) {
    io.out(`BEGIN;\n${sql}COMMIT;\n-- Dry run: nothing was run. Pipe this to psql as a superuser (or a member of the trail's owner and of ${args.owner}).`);
    return 0;
  }
  const url = databaseUrl('trail:roles', { 'database-url': args.databaseUrl }, io);
  if (!url) throw new UsageError(databaseUrlRequired());
  const flagOf = new Map<string, string>([[args.owner, '--owner'], ...args.readers.map((r) => [r, '--reader'] as [string, string])]);
  const tables = await inTrailTransaction(url, 'trail:roles', io, async (client) => {
    const missing = await missingRoles(client, [...flagOf.keys()]);
    if (missing.length) {
      const [role] = missing;
      const create = flagOf.get(role) === '--owner' ? `CREATE ROLE ${quoteIdent(role)} LOGIN REPLICATION PASSWORD '...'` : `CREATE ROLE ${quoteIdent(role)} LOGIN PASSWORD '...'`;
      throw new BemiError(
        `${missing.map((r) => `role "${r}" (${flagOf.get(r)})`).join(', ')} ${missing.length > 1 ? 'do' : 'does'} not exist`,
        `Create ${missing.length > 1 ? 'them' : 'it'} first (${create}${missing.length > 1 ? ', and so on' : ''}) or fix the flag; nothing was changed.`,
      );
    }
    // A savepoint, so that after a refusal the catalog can still be read to explain it.
    await client.query('SAVEPOINT bemi_trail');
    try {
      await client.query(sql);
    } catch (error) {
      await client.query('ROLLBACK TO SAVEPOINT bemi_trail');
      throw await explain(error, client, args);
    }
    return trailTables(client, args.schema);
  });
  const guard = tables.guard ? ` and the guard function ${tables.guard}` : '';
  io.out(
    `The trail in schema "${args.schema}" is owned by "${args.owner}" and read-only for ${args.readers.map((r) => `"${r}"`).join(', ')} ` +
      `(SELECT and USAGE on the schema; every other privilege of theirs and of PUBLIC revoked), in one transaction: ` +
      `${tables.names.length} table(s)${guard}.\n${tables.names.map((t) => `  ${t}`).join('\n')}`,
  );
  return 0;
}

interface TrailRolesArgs {
  help: boolean;
  owner: string;
  readers: string[];
  schema: string;
  dryRun: boolean;
  databaseUrl?: string;
}

export function parseTrailRolesArgs(argv: string[]): TrailRolesArgs {
  const values = parseCommandLine(argv, {
    owner: { type: 'string' },
    reader: { type: 'string', multiple: true },
    schema: { type: 'string' },
    'database-url': { type: 'string' },
    'dry-run': { type: 'boolean' },
    help: { type: 'boolean', short: 'h' },
  }) as { owner?: string; reader?: string[]; schema?: string; 'database-url'?: string; 'dry-run'?: boolean; help?: boolean };
  if (values.help) return { help: true, owner: '', readers: [], schema: DEFAULT_SCHEMA, dryRun: false };
  const { owner, reader: readers = [] } = values;
  if (owner === undefined) throw new UsageError('--owner is required: the role capture and retention connect as, e.g. --owner bemi_capture');
  if (readers.length === 0) throw new UsageError('--reader is required: the role the application connects as, e.g. --reader app (repeat for several)');
  for (const [flag, value] of [['--owner', owner], ...readers.map((r) => ['--reader', r])]) {
    // Role names are taken as written (no trimming, no case folding): they are quoted in the SQL.
    if (value === '' || value.length > 63) throw new UsageError(`${flag} needs a role name of 1 to 63 characters, got "${value}"`);
  }
  if (readers.includes(owner)) throw new UsageError(`"${owner}" is both --owner and --reader; a reader must not own the trail (an owner may change it), so give the application a role of its own`);
  for (const key of ['database-url', 'schema'] as const) {
    if (values[key] !== undefined && values[key]!.trim() === '') throw new UsageError(`--${key} needs a non-empty value`);
  }
  return { help: false, owner, readers: [...new Set(readers)], schema: values.schema ?? DEFAULT_SCHEMA, dryRun: values['dry-run'] === true, databaseUrl: values['database-url'] };
}

/**
 * Runs `work` in one transaction on `url`, rolled back on any error; PostgreSQL's warnings (the
 * SQL's own, e.g. a reader that owns the schema) go to stderr as they come.
 */
export async function inTrailTransaction<T>(url: string, command: string, io: CliIo, work: (client: Client) => Promise<T>): Promise<T> {
  const client = new Client({ connectionString: url });
  client.on('notice', (notice) => {
    if (notice.severity === 'WARNING') io.err(`nestjs-bemi ${command}: WARNING ${(notice.message ?? '').replace(/^nestjs-bemi: /, '')}${notice.hint ? `. ${notice.hint}` : ''}`);
  });
  client.on('error', () => undefined); // a dropped connection surfaces as the failed query's error
  try {
    await client.connect();
    await client.query('BEGIN');
    const result = await work(client);
    await client.query('COMMIT');
    return result;
  } catch (error) {
    await client.query('ROLLBACK').catch(() => undefined);
    throw error;
  } finally {
    await client.end().catch(() => undefined);
  }
}

/** `schema.table` as PostgreSQL prints it: quoted only where it must be. */
export function shownName(schema: string, table: string): string {
  const part = (name: string) => (/^[a-z_][a-z0-9_$]*$/.test(name) ? name : quoteIdent(name));
  return `${part(schema)}.${part(table)}`;
}

/** The error for a trail that is not there yet, for both trail commands. */
export function trailMissingError(schema: string, missing: string): BemiError {
  return new BemiError(
    `the trail tables are not there yet (no ${missing})`,
    `Start the capture worker once (npx nestjs-bemi capture, or capture: {} in BemiModule.forRoot(); it creates them) or run the changes-table migration (bemiChangesTableSql().up) first, then run this again; if the trail is in another schema than "${schema}", pass --schema.`,
  );
}

/** The current user and the owner of `changes`, to say who must run a command refused with 42501 (outside a failed transaction). */
export async function whoOwns(client: Client, schema: string): Promise<{ me: string; owner: string | null }> {
  const { rows } = await client.query<{ me: string; owner: string | null }>(
    `SELECT current_user AS me, (SELECT pg_catalog.pg_get_userbyid(relowner) FROM pg_catalog.pg_class WHERE oid = pg_catalog.to_regclass($1)) AS owner`,
    [`${quoteIdent(schema)}.${quoteIdent(CHANGES_TABLE)}`],
  );
  return rows[0];
}

async function missingRoles(client: Client, roles: string[]): Promise<string[]> {
  const { rows } = await client.query<{ name: string }>(
    `SELECT name FROM pg_catalog.unnest($1::text[]) WITH ORDINALITY AS r(name, i) WHERE NOT EXISTS (SELECT FROM pg_catalog.pg_roles WHERE rolname = r.name) ORDER BY i`,
    [roles],
  );
  return rows.map((r) => r.name);
}

/** bemiTrailRolesSql()'s refusals and PostgreSQL's in the words of this command's flags. */
async function explain(error: unknown, client: Client, args: TrailRolesArgs): Promise<unknown> {
  const { code, message = '', hint } = error as { code?: string; message?: string; hint?: string };
  const ours = message.startsWith('nestjs-bemi: ');
  if (code === '42P01' && ours) return trailMissingError(args.schema, /no table (.*)$/.exec(message)?.[1] ?? 'trail table');
  if (code === '42501' && ours) return new BemiError(`--reader ${message.replace(/^nestjs-bemi: reader /, '')}`, hint ?? '');
  if (code === '42501') {
    const { me, owner } = await whoOwns(client, args.schema);
    const grant = [owner, args.owner].filter((r): r is string => r !== null && r !== me).map(quoteIdent);
    return new BemiError(
      `the connecting role "${me}" may not hand the trail to "${args.owner}" (PostgreSQL: ${message})`,
      `Run trail:roles as a superuser, or as a member of both the trail's current owner${owner ? ` "${owner}"` : ''} and --owner "${args.owner}"${grant.length ? ` (GRANT ${grant.join(', ')} TO ${quoteIdent(me)})` : ''}; nothing was changed.`,
    );
  }
  return error;
}

/** The trail's tables as they now are (TRAIL_TABLES and every partition of `changes`), and the guard function if installed. */
async function trailTables(client: Client, schema: string): Promise<{ names: string[]; guard: string | null }> {
  const q = (name: string) => `${quoteIdent(schema)}.${quoteIdent(name)}`;
  const qualified = `pg_catalog.format('%I.%I', n.nspname, c.relname)`;
  const from = `JOIN pg_catalog.pg_class c ON c.oid = t JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace`;
  const [changes, ...others] = (
    await client.query<{ name: string; partitioned: boolean }>(
      `SELECT ${qualified} AS name, c.relkind = 'p' AS partitioned FROM pg_catalog.unnest($1::regclass[]) WITH ORDINALITY AS x(t, i) ${from} ORDER BY i`,
      [TRAIL_TABLES.map(q)],
    )
  ).rows;
  const partitions = (
    await client.query<{ name: string }>(
      `SELECT ${qualified} AS name FROM pg_catalog.pg_partition_tree($1::regclass) AS p(t, parent, leaf, level) ${from} WHERE level > 0 ORDER BY level, 1`,
      [q(CHANGES_TABLE)],
    )
  ).rows;
  const names = [changes.partitioned ? `${changes.name} (partitioned)` : changes.name, ...partitions.map((r) => r.name), ...others.map((r) => r.name)];
  const guard = (await client.query<{ fn: string | null }>(`SELECT pg_catalog.to_regprocedure($1)::text AS fn`, [`${q(APPEND_ONLY_GUARD)}()`])).rows[0].fn;
  return { names, guard };
}
