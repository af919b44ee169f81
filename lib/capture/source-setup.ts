import { createHash } from 'node:crypto';
import type { Client } from 'pg';
import { BEMI_SQL_OBJECTS } from '../migration/bemi-migration-sql';
import { quoteIdent, quoteLiteral } from '../shared/sql-quote';
import { bemiChangesTableSql, CAPTURE_STATE_TABLE, CHANGES_TABLE } from '../trail/changes-table';
import { CHAIN_COLUMNS } from '../trail/change-chain';
import type { CaptureLogger, ResolvedCaptureOptions } from '../options/capture-options';
import { excludedTableNames, trackedRelationCondition } from './new-table-publisher';
import { BemiError } from '../shared/bemi-error';
import { LEGACY_SLOT_NAME } from '../options/defaults';

/** Columns of `changes` added after its first release (an older trail created with ensureSchema off lacks them). */
const ADDED_CHANGES_COLUMNS = ['previous_key', 'role', 'session_role', 'context_seq'];

/** Thrown when the source or destination cannot be captured as configured; says what to fix. */
export class BemiCaptureSetupError extends BemiError {}

/** Fails with a clear message on a server or role that cannot feed logical replication. */
export async function checkSource(client: Client): Promise<void> {
  const { rows } = await client.query<{ version: number; wal_level: string; role: string; may_replicate: boolean }>(
    `SELECT current_setting('server_version_num')::int AS version, current_setting('wal_level') AS wal_level, current_user AS role,
            (SELECT rolreplication OR rolsuper FROM pg_catalog.pg_roles WHERE rolname = current_user) AS may_replicate`,
  );
  const s = rows[0];
  if (s.version < 140000) throw new BemiCaptureSetupError(`nestjs-bemi capture needs PostgreSQL 14 or newer (server_version_num is ${s.version}).`);
  if (s.wal_level !== 'logical') {
    throw new BemiCaptureSetupError(
      `wal_level is "${s.wal_level}" on the source, so its changes cannot be streamed. Set wal_level = logical ` +
        `(postgresql.conf, ALTER SYSTEM SET wal_level = logical, or your provider's "logical replication" setting) and restart PostgreSQL.`,
    );
  }
  if (!s.may_replicate && !(await memberOfManagedReplicationRole(client))) {
    throw new BemiCaptureSetupError(
      `Role "${s.role}" may not use replication. Run (as a superuser): ALTER ROLE ${quoteIdent(s.role)} REPLICATION; ` +
        `or connect the capture worker as a role that has it.`,
    );
  }
}

/**
 * Every schema in `capture.schemas` must exist in the source database: a mistyped name would
 * otherwise start a worker that captures nothing of it (and warn about something else).
 */
export async function checkSchemas(client: Client, schemas: readonly string[]): Promise<void> {
  const { rows } = await client.query<{ name: string }>(
    `SELECT s AS name FROM unnest($1::text[]) AS s WHERE NOT EXISTS (SELECT 1 FROM pg_catalog.pg_namespace n WHERE n.nspname = s)`,
    [schemas],
  );
  if (rows.length === 0) return;
  const { rows: db } = await client.query<{ name: string; schemas: string | null }>(
    `SELECT current_database() AS name, string_agg(nspname, ', ' ORDER BY nspname) AS schemas FROM pg_catalog.pg_namespace
      WHERE nspname NOT LIKE 'pg\\_%' AND nspname <> 'information_schema'`,
  );
  throw new BemiCaptureSetupError(
    `Capture option "schemas" lists ${rows.map((r) => `"${r.name}"`).join(', ')}, which database "${db[0].name}" does not have (its schemas: ${db[0].schemas ?? 'none'}). ` +
      `Fix the name, or create the schema first; the trigger migration must track the same schemas.`,
  );
}

/** Managed services grant replication through a role instead of the attribute. */
async function memberOfManagedReplicationRole(client: Client): Promise<boolean> {
  const { rows } = await client.query(
    `SELECT 1 FROM pg_catalog.pg_roles r WHERE r.rolname IN ('rds_replication', 'azure_pg_admin', 'cloudsqlsuperuser')
       AND pg_catalog.pg_has_role(current_user, r.oid, 'member')`,
  );
  return rows.length > 0;
}

export interface TrackedTable {
  oid: number;
  schema: string;
  name: string;
  hasTrigger: boolean;
  replicaIdentity: string;
  hasPrimaryKey: boolean;
  /** `schema.table`, quoted for SQL. */
  sql: string;
}

/** The tables capture publishes: the same rule as the trigger migration, minus the destination tables. */
export async function trackedTables(client: Client, options: ResolvedCaptureOptions): Promise<TrackedTable[]> {
  const { rows } = await client.query<{ oid: number; schema: string; name: string; has_trigger: boolean; ident: string; has_pk: boolean }>(
    `SELECT c.oid::int AS oid, n.nspname AS schema, c.relname AS name, c.relreplident AS ident,
            EXISTS (SELECT 1 FROM pg_catalog.pg_trigger t WHERE t.tgrelid = c.oid AND t.tgname = $3) AS has_trigger,
            EXISTS (SELECT 1 FROM pg_catalog.pg_index i WHERE i.indrelid = c.oid AND i.indisprimary) AS has_pk
       FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
      WHERE ${trackedRelationCondition('$1::text[]', '$2::text[]')}
      ORDER BY n.nspname, c.relname`,
    [options.schemas, excludedTableNames(options), BEMI_SQL_OBJECTS.trigger],
  );
  return rows.map((r) => ({
    oid: r.oid,
    schema: r.schema,
    name: r.name,
    hasTrigger: r.has_trigger,
    replicaIdentity: r.ident,
    hasPrimaryKey: r.has_pk,
    sql: `${quoteIdent(r.schema)}.${quoteIdent(r.name)}`,
  }));
}

/** Startup warnings: tables without the context trigger, without REPLICA IDENTITY FULL, without a key. */
export function warnAboutTables(tables: TrackedTable[], logger: CaptureLogger): void {
  const list = (ts: TrackedTable[]) => ts.map((t) => `${t.schema}.${t.name}`).join(', ');
  const noTrigger = tables.filter((t) => !t.hasTrigger);
  if (noTrigger.length) {
    logger.warn(`No nestjs-bemi context trigger on ${noTrigger.length} captured table(s): ${list(noTrigger)}. Their changes are captured without context; run the migration from bemiMigrationSql().`);
  }
  const partial = tables.filter((t) => t.replicaIdentity !== 'f');
  if (partial.length) {
    logger.warn(`Without REPLICA IDENTITY FULL, "before" holds only what the WAL carries (key columns of DELETEs and key changes) for: ${list(partial)}. Use bemiMigrationSql({ replicaIdentityFull: true }) for complete before images.`);
  }
  const noKey = tables.filter((t) => !t.hasPrimaryKey);
  if (noKey.length) logger.warn(`Captured table(s) without a primary key get primary_key NULL: ${list(noKey)}.`);
}

/**
 * Creates the publication (empty) when missing. Never FOR ALL TABLES: in the same database, the
 * worker's own writes to `changes` would come back.
 */
export async function ensurePublication(client: Client, publication: string): Promise<void> {
  const exists = await client.query(`SELECT 1 FROM pg_catalog.pg_publication WHERE pubname = $1`, [publication]);
  if (exists.rows.length > 0) return;
  // Partitions are published as their root table: the name the application (and its ORM) uses.
  await client.query(`CREATE PUBLICATION ${quoteIdent(publication)} WITH (publish = 'insert, update, delete, truncate', publish_via_partition_root = true)`);
}

/** Makes the publication's table list equal to the tracked tables (creating it when missing). */
export async function syncPublication(client: Client, publication: string, tables: TrackedTable[]): Promise<void> {
  await ensurePublication(client, publication);
  const pub = quoteIdent(publication);
  const { rows } = await client.query<{ oid: number }>(
    `SELECT pr.prrelid::int AS oid FROM pg_catalog.pg_publication_rel pr JOIN pg_catalog.pg_publication p ON p.oid = pr.prpubid WHERE p.pubname = $1`,
    [publication],
  );
  const current = new Set(rows.map((r) => r.oid));
  const wanted = new Set(tables.map((t) => t.oid));
  const toAdd = tables.filter((t) => !current.has(t.oid));
  if (toAdd.length) await client.query(`ALTER PUBLICATION ${pub} ADD TABLE ${toAdd.map((t) => t.sql).join(', ')}`);
  const toDrop = [...current].filter((oid) => !wanted.has(oid));
  if (toDrop.length) {
    const names = await client.query<{ name: string }>(`SELECT oid::regclass::text AS name FROM pg_catalog.pg_class WHERE oid = ANY ($1::oid[])`, [toDrop]);
    if (names.rows.length) await client.query(`ALTER PUBLICATION ${pub} DROP TABLE ${names.rows.map((r) => r.name).join(', ')}`);
  }
}

/**
 * The default slot of a database: `nestjs_bemi_<database>`. Slots are per server, so two databases
 * of one server (dev and test) must not share a name. Names that are not lower-case letters,
 * digits and "_", or too long for PostgreSQL's 63 characters, get those characters replaced and
 * a hash of the real name appended, so different databases never meet on one slot.
 */
export function defaultSlotName(database: string): string {
  const plain = database.toLowerCase().replace(/[^a-z0-9_]/g, '_');
  const name = `${LEGACY_SLOT_NAME}_${plain}`;
  if (plain === database && name.length <= 63) return name;
  const hash = createHash('sha1').update(database).digest('hex').slice(0, 8);
  return `${name.slice(0, 63 - 9)}_${hash}`;
}

/**
 * The slot to use when none is configured: this database's `nestjs_bemi` slot when it has one
 * (the old default: its trail resumes where it stopped), else {@link defaultSlotName}. `query`
 * runs one statement on the source database (a pg client or MikroORM's connection fit).
 */
export async function chooseDefaultSlot(query: (sql: string) => Promise<Array<Record<string, unknown>>>): Promise<string> {
  const [row] = await query(
    `SELECT current_database() AS db, EXISTS (SELECT 1 FROM pg_catalog.pg_replication_slots
       WHERE slot_name = ${quoteLiteral(LEGACY_SLOT_NAME)} AND database = current_database() AND plugin = 'pgoutput') AS legacy`,
  );
  return row.legacy === true ? LEGACY_SLOT_NAME : defaultSlotName(String(row.db));
}

/**
 * Creates the slot when missing. Returns true when it did (capture starts now; anything before is
 * not in the trail). An existing slot of the wrong kind or database is an error, never replaced;
 * the message never suggests dropping a slot of another database (it holds that database's changes).
 */
export async function ensureSlot(client: Client, slotName: string): Promise<boolean> {
  const { rows } = await client.query<{ plugin: string | null; database: string | null; slot_type: string }>(
    `SELECT plugin, database, slot_type FROM pg_catalog.pg_replication_slots WHERE slot_name = $1`,
    [slotName],
  );
  if (rows.length) {
    const slot = rows[0];
    const { rows: db } = await client.query<{ name: string }>(`SELECT current_database() AS name`);
    const here = db[0].name;
    if (slot.database !== null && slot.database !== here) {
      throw new BemiCaptureSetupError(
        `Replication slot "${slotName}" belongs to database "${slot.database}" on this server (slots are per server, not per database), so database "${here}" cannot use it. ` +
          `Give this database its own capture slotName (leaving slotName unset uses "${defaultSlotName(here)}"). Do not drop "${slotName}": it holds the changes of "${slot.database}".`,
      );
    }
    if (slot.slot_type !== 'logical' || slot.plugin !== 'pgoutput') {
      throw new BemiCaptureSetupError(
        `Replication slot "${slotName}" of database "${here}" is a ${slot.slot_type} slot${slot.plugin ? ` of plugin ${slot.plugin}` : ''}, not a pgoutput slot, so it was not made by nestjs-bemi. ` +
          `Choose another capture slotName; drop this one only if you know nothing else reads it (npx nestjs-bemi capture:drop-slot --slot ${slotName}).`,
      );
    }
    return false;
  }
  await client.query(`SELECT pg_catalog.pg_create_logical_replication_slot($1, 'pgoutput')`, [slotName]);
  return true;
}

/** Creates the audit tables when allowed, otherwise refuses to start when they are missing. */
export async function ensureDestination(client: Client, options: ResolvedCaptureOptions): Promise<void> {
  if (options.ensureSchema) {
    // Concurrent workers (or app instances) may race on CREATE ... IF NOT EXISTS; serialize them.
    await client.query('BEGIN');
    try {
      await client.query(`SELECT pg_advisory_xact_lock(hashtext('nestjs-bemi:ensure-schema'))`);
      await client.query(bemiChangesTableSql({ schema: options.schema, indexBeforeAfter: options.indexBeforeAfter }).up);
      await client.query('COMMIT');
    } catch (e) {
      await client.query('ROLLBACK').catch(() => undefined);
      throw e;
    }
    return;
  }
  const { rows } = await client.query<{ changes: string | null; state: string | null }>(
    `SELECT to_regclass($1) AS changes, to_regclass($2) AS state`,
    [`${quoteIdent(options.schema)}.${quoteIdent(CHANGES_TABLE)}`, `${quoteIdent(options.schema)}.${quoteIdent(CAPTURE_STATE_TABLE)}`],
  );
  if (!rows[0].changes || !rows[0].state) {
    throw new BemiCaptureSetupError(
      `The destination has no ${options.schema}.${CHANGES_TABLE} / ${options.schema}.${CAPTURE_STATE_TABLE} table. ` +
        `Run the migration (bemiChangesTableSql().up), or let the worker create them (ensureSchema: true; CLI: drop --no-create-table).`,
    );
  }
  // Columns added since the table was first created: the writer names them all.
  // And `context` must take NULL: rows that share a holder's context store none.
  const { rows: columns } = await client.query<{ missing: string[]; context_required: boolean }>(
    `SELECT coalesce(array_agg(c ORDER BY c), '{}') AS missing,
        EXISTS (SELECT 1 FROM pg_catalog.pg_attribute a WHERE a.attrelid = to_regclass($1) AND a.attname = 'context' AND a.attnotnull) AS context_required
      FROM unnest($2::text[]) c
      WHERE NOT EXISTS (SELECT 1 FROM pg_catalog.pg_attribute a WHERE a.attrelid = to_regclass($1) AND a.attname = c AND NOT a.attisdropped)`,
    [`${quoteIdent(options.schema)}.${quoteIdent(CHANGES_TABLE)}`, options.chain ? [...ADDED_CHANGES_COLUMNS, ...CHAIN_COLUMNS] : ADDED_CHANGES_COLUMNS],
  );
  const { missing, context_required: contextRequired } = columns[0];
  if (missing.length || (contextRequired && !options.contextPerRow)) {
    const lacks = [...(missing.length ? [`lacks column(s) ${missing.join(', ')}`] : []), ...(contextRequired && !options.contextPerRow ? ['has context NOT NULL'] : [])];
    throw new BemiCaptureSetupError(
      `The destination's ${options.schema}.${CHANGES_TABLE} ${lacks.join(' and ')}, which this version's writes need. ` +
        `Run bemiChangesTableSql().up again (it is idempotent and adds them), or let the worker do it (ensureSchema: true).`,
    );
  }
}

/**
 * Makes sure the slot has a state row. `restarted` (the slot was just created) resets `started_at`:
 * changes made before this moment were never streamed through this slot.
 */
export async function ensureStateRow(client: Client, schema: string, slotName: string, database: string, restarted: boolean): Promise<bigint | null> {
  const state = `${quoteIdent(schema)}.${quoteIdent(CAPTURE_STATE_TABLE)}`;
  await client.query(
    `INSERT INTO ${state} (slot_name, database, started_at, updated_at) VALUES ($1, $2, now(), now())
     ON CONFLICT (slot_name) DO ${restarted ? 'UPDATE SET database = EXCLUDED.database, started_at = now(), last_commit_position = NULL, last_commit_end_position = NULL, last_committed_at = NULL, updated_at = now()' : 'NOTHING'}`,
    [slotName, database],
  );
  const { rows } = await client.query<{ pos: string | null }>(`SELECT last_commit_end_position::text AS pos FROM ${state} WHERE slot_name = $1`, [slotName]);
  return rows[0]?.pos ? BigInt(rows[0].pos) : null;
}
