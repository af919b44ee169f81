import { createHash } from 'node:crypto';
import type { Client } from 'pg';
import { quoteIdent, quoteLiteral, textArray } from '../shared/sql-quote';
import type { ResolvedCaptureOptions } from '../options/capture-options';
import { NEVER_TRACKED_TABLES } from '../trail/changes-table';

/**
 * Which relations capture publishes, as an SQL condition on `pg_class c` joined to
 * `pg_namespace n`: the trigger migration's `_bemi_is_tracked` rule (ordinary or partitioned,
 * permanent, in the tracked schemas, not an extension's, not `changes`, `mikro_orm_migrations`
 * or `_bemi*`), minus partitions (published through their root). The one place this rule is
 * written for capture: the startup listing and the event trigger both use it.
 */
export function trackedRelationCondition(schemasSql: string, excludedSql: string): string {
  return `c.relkind IN ('r', 'p') AND c.relpersistence = 'p' AND NOT c.relispartition
        AND n.nspname = ANY (${schemasSql}) AND NOT (c.relname = ANY (${excludedSql})) AND c.relname NOT LIKE '\\_bemi%'
        AND NOT EXISTS (SELECT 1 FROM pg_catalog.pg_depend d
                         WHERE d.classid = 'pg_catalog.pg_class'::regclass AND d.objid = c.oid AND d.deptype = 'e')`;
}

/** Table names capture never publishes, whatever the options. */
export function excludedTableNames(options: Pick<ResolvedCaptureOptions, 'excludeTables'>): string[] {
  return [...NEVER_TRACKED_TABLES, ...options.excludeTables];
}

/** Name of the event trigger (and of its function) that publishes new tables for one publication. */
export function publisherName(publication: string): string {
  const name = `_bemi_publish_${publication}`;
  // Identifiers stop at 63 bytes; a long publication name gets a stable digest instead.
  return Buffer.byteLength(name) <= 63 ? name : `_bemi_publish_${createHash('sha1').update(publication).digest('hex').slice(0, 24)}`;
}

/**
 * DDL of the event trigger that adds a table to the publication in the very transaction that
 * creates it (or moves it into a tracked schema, renames it, makes it logged). pgoutput decides
 * per change, under the catalog snapshot of that change, whether its table is published: rows
 * written after this ran — in the same transaction or any later one — are streamed. Without it,
 * a new table joins only at the next periodic refresh and its first rows are not captured.
 *
 * SECURITY DEFINER so that a table created by any role can join the publication its owner (the
 * capture role, a superuser: only superusers create event triggers) owns; the search path is
 * pinned, and every name below is schema-qualified. A failure never fails the user's DDL: it is
 * reported as a warning and the periodic refresh adds the table later.
 */
export function newTablePublisherSql(options: Pick<ResolvedCaptureOptions, 'publicationName' | 'schemas' | 'excludeTables'>): { up: string; down: string } {
  const name = publisherName(options.publicationName);
  const fn = `${quoteIdent(options.schemas[0])}.${quoteIdent(name)}`;
  const pub = quoteLiteral(options.publicationName);
  const up = `-- nestjs-bemi capture: publish new tables at once (up)
CREATE OR REPLACE FUNCTION ${fn}() RETURNS event_trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $bemi$
DECLARE
  rel regclass;
BEGIN
  IF NOT EXISTS (SELECT 1 FROM pg_catalog.pg_publication WHERE pubname = ${pub}) THEN
    RETURN;
  END IF;
  FOR rel IN
    SELECT DISTINCT c.oid::regclass
      FROM pg_catalog.pg_event_trigger_ddl_commands() cmd
      JOIN pg_catalog.pg_class c ON c.oid = cmd.objid
      JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
     WHERE cmd.classid = 'pg_catalog.pg_class'::regclass
       AND ${trackedRelationCondition(textArray(options.schemas), textArray(excludedTableNames(options)))}
       AND NOT EXISTS (SELECT 1 FROM pg_catalog.pg_publication_rel pr JOIN pg_catalog.pg_publication p ON p.oid = pr.prpubid
                        WHERE p.pubname = ${pub} AND pr.prrelid = c.oid)
  LOOP
    BEGIN
      EXECUTE pg_catalog.format('ALTER PUBLICATION %I ADD TABLE %s', ${pub}, rel);
    EXCEPTION WHEN OTHERS THEN
      RAISE WARNING 'nestjs-bemi: could not add % to publication % (%): its changes are captured only after the worker''s next publication refresh', rel, ${pub}, SQLERRM;
    END;
  END LOOP;
END
$bemi$;
${createEventTriggerSql(name, 'ddl_command_end', fn)}
`;
  const down = `-- nestjs-bemi capture: publish new tables at once (down)
DO $bemi$
DECLARE
  fn regprocedure;
BEGIN
  SELECT evtfoid::regprocedure INTO fn FROM pg_catalog.pg_event_trigger WHERE evtname = ${quoteLiteral(name)};
  IF fn IS NOT NULL THEN
    EXECUTE pg_catalog.format('DROP EVENT TRIGGER %I', ${quoteLiteral(name)});
    EXECUTE pg_catalog.format('DROP FUNCTION %s', fn);
  END IF;
END
$bemi$;
`;
  return { up, down };
}

/** The DDL commands after which capture's ddl_command_end triggers run: those that create a table or change one. */
const TABLE_DDL_TAGS = `'CREATE TABLE', 'CREATE TABLE AS', 'SELECT INTO', 'ALTER TABLE'`;

/** Creates the event trigger `name` on `event` (for ddl_command_end: after table DDL only), unless it exists. */
export function createEventTriggerSql(name: string, event: 'ddl_command_end' | 'sql_drop', fn: string): string {
  return `DO $bemi$
BEGIN
  IF NOT EXISTS (SELECT 1 FROM pg_catalog.pg_event_trigger WHERE evtname = ${quoteLiteral(name)}) THEN
    CREATE EVENT TRIGGER ${quoteIdent(name)} ON ${event}${event === 'ddl_command_end' ? ` WHEN TAG IN (${TABLE_DDL_TAGS})` : ''} EXECUTE FUNCTION ${fn}();
  END IF;
END
$bemi$;`;
}

/** How tables created while the worker runs reach its publication. */
export type NewTablePublishing = 'event-trigger' | 'refresh';

/**
 * Installs (or updates) the publisher when the role may. Returns 'event-trigger' when it is in
 * place — installed now, or already there in the current form — and otherwise the reason it is
 * not, for the startup warning.
 */
export async function installNewTablePublisher(
  client: Client,
  options: Pick<ResolvedCaptureOptions, 'publicationName' | 'schemas' | 'excludeTables'>,
): Promise<{ mode: NewTablePublishing; reason?: string }> {
  const installed = await installEventTrigger(client, newTablePublisherSql(options).up, publisherName(options.publicationName));
  return installed.ok ? { mode: 'event-trigger' } : { mode: 'refresh', reason: installed.reason };
}

/**
 * Runs the `up` script of one of capture's event triggers (`name`; its function's body is the
 * script's first `$bemi$` block) in a transaction. Only superusers create event triggers: when
 * this role may not, the trigger still counts as installed if someone allowed to (a superuser, an
 * earlier run) put exactly this version in place.
 */
export async function installEventTrigger(client: Client, up: string, name: string): Promise<{ ok: boolean; reason?: string }> {
  try {
    await client.query('BEGIN');
    await client.query(up);
    await client.query('COMMIT');
    return { ok: true };
  } catch (e) {
    await client.query('ROLLBACK').catch(() => undefined);
    if (await installedAsWanted(client, up, name)) return { ok: true };
    return { ok: false, reason: e instanceof Error ? e.message : String(e) };
  }
}

async function installedAsWanted(client: Client, up: string, name: string): Promise<boolean> {
  const { rows } = await client.query<{ src: string }>(
    `SELECT p.prosrc AS src FROM pg_catalog.pg_event_trigger e JOIN pg_catalog.pg_proc p ON p.oid = e.evtfoid
      WHERE e.evtname = $1 AND e.evtenabled <> 'D'`,
    [name],
  );
  if (rows.length === 0) return false;
  const wanted = /\$bemi\$([\s\S]*?)\$bemi\$/.exec(up)?.[1];
  return rows[0].src === wanted;
}
