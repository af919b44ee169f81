import { BEMI_COMMENT_END, BEMI_COMMENT_START, BEMI_MESSAGE_PREFIX, BEMI_TRUST_MESSAGE_PREFIX, CONTEXT_MESSAGE_VERSION } from '../shared/wire-format';
import { quoteIdent, quoteLiteral, textArray } from '../shared/sql-quote';
import { DEFAULT_SCHEMA } from '../shared/postgres-names';
import { NEVER_TRACKED_TABLES } from '../trail/changes-table';

export interface BemiMigrationSqlOptions {
  /** Schemas whose tables are tracked. Default `['public']`. The functions live in the first one. */
  schemas?: string[];
  /**
   * Set `REPLICA IDENTITY FULL` on tracked tables so that `before` holds every column of UPDATEs
   * and DELETEs. Default true, as in every generator: an audit trail wants whole before-images.
   * False leaves REPLICA IDENTITY alone (only the key columns reach `before`; the migration then
   * needs only the TRIGGER privilege, not ownership of the tables).
   */
  replicaIdentityFull?: boolean;
  /** Extra table names never to track (besides `changes`, `mikro_orm_migrations` and `_bemi*`). */
  excludeTables?: string[];
}

/** Names of the database objects the migration creates (for tests, health checks and docs). */
export const BEMI_SQL_OBJECTS = {
  trigger: '_bemi_context',
  eventTrigger: '_bemi_track_new_tables',
  emitFunction: '_bemi_emit_context',
  trackFunction: '_bemi_track_table',
  isTrackedFunction: '_bemi_is_tracked',
  onCreateFunction: '_bemi_on_create_table',
  /** Transaction-local setting: "on" after a statement of this transaction emitted a context. */
  emittedSetting: 'bemi.context_emitted',
} as const;

/** The default of `replicaIdentityFull`, shared by this function, the migration file, the bin and the schematics. */
export const DEFAULT_REPLICA_IDENTITY_FULL = true;

/**
 * The SQL that installs (up) and removes (down) nestjs-bemi's context triggers. Each is one
 * multi-statement script. Up is idempotent; down removes only what up created.
 *
 * How context reaches the WAL: a statement-level BEFORE trigger on every tracked table reads
 * the top-level query text. If it starts with `/*Bemi <json> Bemi*\/`, the JSON is emitted as a
 * transactional logical message with prefix `_bemi` (so it reaches the WAL only if the
 * transaction commits, right before the rows of that statement). A statement without such a
 * comment, after one that had it in the same transaction, emits `{}` so that a consumer that
 * gives each row the latest message before it attributes that statement to no context.
 */
export function bemiMigrationSql(options: BemiMigrationSqlOptions = {}): { up: string; down: string } {
  const schemas = validateNames(options.schemas ?? [DEFAULT_SCHEMA], 'schemas');
  const excluded = [...NEVER_TRACKED_TABLES, ...validateNames(options.excludeTables ?? [], 'excludeTables', true)];
  const identityFull = options.replicaIdentityFull ?? DEFAULT_REPLICA_IDENTITY_FULL;
  const home = quoteIdent(schemas[0]);
  const o = BEMI_SQL_OBJECTS;
  const fn = (name: string) => `${home}.${name}`;
  const commentStart = quoteLiteral(BEMI_COMMENT_START);
  const commentEnd = quoteLiteral(BEMI_COMMENT_END);

  const up = `-- nestjs-bemi: statement-level context triggers (up)
DO $bemi$
BEGIN
  IF pg_catalog.current_setting('server_version_num')::int < 140000 THEN
    RAISE EXCEPTION 'nestjs-bemi needs PostgreSQL 14 or newer, this server is %', pg_catalog.current_setting('server_version');
  END IF;
  IF pg_catalog.current_setting('wal_level') <> 'logical' THEN
    RAISE WARNING 'nestjs-bemi: wal_level is "%"; context and changes cannot be captured until it is "logical" (set wal_level = logical and restart PostgreSQL)', pg_catalog.current_setting('wal_level');
  END IF;
END
$bemi$;

-- Emits the context of the current statement, with the database roles that ran it. Reads only a
-- comment that STARTS the query text: no string literal can start a statement, so data written by
-- a query can never pose as context, and the cost depends on the size of the context, not of the
-- statement. SECURITY DEFINER so that it keeps working once PUBLIC may no longer call
-- pg_logical_emit_message (below); its search_path is fixed so no caller's schema can intercept it.
CREATE OR REPLACE FUNCTION ${fn(o.emitFunction)}() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $bemi$
DECLARE
  query text := pg_catalog.current_query();
  -- current_user is this function's owner in here; the session's role is what SET ROLE chose, if any.
  acting text := pg_catalog.current_setting('role');
  who text;
  stop integer;
BEGIN
  IF acting = 'none' THEN
    acting := session_user;
  END IF;
  IF pg_catalog.starts_with(query, ${commentStart}) THEN
    stop := pg_catalog.strpos(query, ${commentEnd});
    IF stop > ${BEMI_COMMENT_START.length} THEN
      PERFORM pg_catalog.pg_logical_emit_message(true, ${quoteLiteral(BEMI_MESSAGE_PREFIX)}, pg_catalog.json_build_array(acting, session_user)::text || E'\\n' || pg_catalog.substr(query, ${BEMI_COMMENT_START.length + 1}, stop - ${BEMI_COMMENT_START.length + 1}));
      PERFORM pg_catalog.set_config(${quoteLiteral(o.emittedSetting)}, '+', true);
      RETURN NULL;
    END IF;
  END IF;
  -- No context on this statement: say so (and who runs it) once per transaction and roles, which
  -- also resets the context an earlier statement of this transaction set. The key names both
  -- roles unambiguously (the first one's length first); the JSON is built only to emit.
  who := pg_catalog.length(acting) || ':' || acting || session_user;
  IF pg_catalog.current_setting(${quoteLiteral(o.emittedSetting)}, true) IS DISTINCT FROM who THEN
    PERFORM pg_catalog.pg_logical_emit_message(true, ${quoteLiteral(BEMI_MESSAGE_PREFIX)}, pg_catalog.json_build_array(acting, session_user)::text || E'\\n');
    PERFORM pg_catalog.set_config(${quoteLiteral(o.emittedSetting)}, who, true);
  END IF;
  RETURN NULL;
END
$bemi$;

-- Only the trigger may emit context: PUBLIC loses EXECUTE on pg_logical_emit_message, which only
-- its owner (a superuser) can take away. The function above must keep it, or every write would fail.
DO $bemi$
DECLARE
  f record;
  open text[] := '{}';
BEGIN
  FOR f IN
    SELECT p.oid::regprocedure AS proc, p.proowner, p.proacl
    FROM pg_catalog.pg_proc p
    WHERE p.proname = 'pg_logical_emit_message' AND p.pronamespace = 'pg_catalog'::regnamespace
  LOOP
    IF pg_catalog.pg_has_role(current_user, f.proowner, 'USAGE') THEN
      EXECUTE pg_catalog.format('REVOKE EXECUTE ON FUNCTION %s FROM PUBLIC', f.proc);
    ELSIF EXISTS (SELECT 1 FROM pg_catalog.aclexplode(COALESCE(f.proacl, pg_catalog.acldefault('f', f.proowner))) a WHERE a.grantee = 0 AND a.privilege_type = 'EXECUTE') THEN
      open := open || f.proc::text;
    END IF;
    IF NOT pg_catalog.has_function_privilege(current_user, f.proc, 'EXECUTE') THEN
      RAISE EXCEPTION 'nestjs-bemi: role "%" may not execute %, so the context trigger it would own could not emit and every write would fail', current_user, f.proc
        USING HINT = pg_catalog.format('Run this migration as a superuser, or first: GRANT EXECUTE ON FUNCTION %s TO %I;', f.proc, current_user);
    END IF;
  END LOOP;
  IF pg_catalog.cardinality(open) > 0 THEN
    RAISE WARNING 'nestjs-bemi: role "%" may not revoke EXECUTE on pg_logical_emit_message from PUBLIC, so any role can still emit a context message of its own and name any role in it; changes keep the roles and context it claims (see docs/security.md)', current_user
      USING HINT = 'Have a superuser run: ' || (SELECT pg_catalog.string_agg(pg_catalog.format('REVOKE EXECUTE ON FUNCTION %s FROM PUBLIC;', x), ' ') FROM pg_catalog.unnest(open) x);
  END IF;
END
$bemi$;

-- Which tables get the trigger: ordinary and partitioned, permanent, in the tracked schemas,
-- not owned by an extension, not the audit trail itself nor MikroORM's migrations table.
CREATE OR REPLACE FUNCTION ${fn(o.isTrackedFunction)}(rel oid) RETURNS boolean
LANGUAGE sql STABLE AS $bemi$
  SELECT EXISTS (
    SELECT 1
    FROM pg_catalog.pg_class c
    JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
    WHERE c.oid = rel
      AND c.relkind IN ('r', 'p')
      AND c.relpersistence = 'p'
      AND n.nspname = ANY (${textArray(schemas)})
      AND NOT (c.relname = ANY (${textArray(excluded)}))
      AND c.relname NOT LIKE '\\_bemi%'
      AND NOT EXISTS (
        SELECT 1 FROM pg_catalog.pg_depend d
        WHERE d.classid = 'pg_catalog.pg_class'::regclass AND d.objid = c.oid AND d.deptype = 'e'
      )
  )
$bemi$;

CREATE OR REPLACE FUNCTION ${fn(o.trackFunction)}(rel oid) RETURNS void
LANGUAGE plpgsql AS $bemi$
BEGIN
  EXECUTE pg_catalog.format(
    'CREATE OR REPLACE TRIGGER ${o.trigger} BEFORE INSERT OR UPDATE OR DELETE OR TRUNCATE ON %s FOR EACH STATEMENT EXECUTE FUNCTION ${fn(o.emitFunction).replace(/'/g, "''")}()',
    rel::regclass);
${
  identityFull
    ? `  IF (SELECT c.relkind FROM pg_catalog.pg_class c WHERE c.oid = rel) = 'r' THEN
    EXECUTE pg_catalog.format('ALTER TABLE %s REPLICA IDENTITY FULL', rel::regclass);
  END IF;
`
    : ''
}END
$bemi$;

DO $bemi$
DECLARE
  rel oid;
BEGIN
  FOR rel IN
    SELECT c.oid FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
    WHERE n.nspname = ANY (${textArray(schemas)}) ORDER BY c.oid
  LOOP
    IF ${fn(o.isTrackedFunction)}(rel) THEN
      PERFORM ${fn(o.trackFunction)}(rel);
    END IF;
  END LOOP;
END
$bemi$;

-- Tables created later get the trigger from an event trigger. Creating one needs superuser
-- (or the managed-service equivalent); without it, the step is explained instead of failing.
CREATE OR REPLACE FUNCTION ${fn(o.onCreateFunction)}() RETURNS event_trigger
LANGUAGE plpgsql AS $bemi$
DECLARE
  created record;
BEGIN
  FOR created IN SELECT objid FROM pg_catalog.pg_event_trigger_ddl_commands() WHERE object_type = 'table' LOOP
    IF ${fn(o.isTrackedFunction)}(created.objid) THEN
      PERFORM ${fn(o.trackFunction)}(created.objid);
    END IF;
  END LOOP;
END
$bemi$;

DO $bemi$
BEGIN
  IF NOT EXISTS (SELECT 1 FROM pg_catalog.pg_event_trigger WHERE evtname = ${quoteLiteral(o.eventTrigger)}) THEN
    CREATE EVENT TRIGGER ${o.eventTrigger} ON ddl_command_end
      WHEN TAG IN ('CREATE TABLE', 'CREATE TABLE AS', 'SELECT INTO')
      EXECUTE FUNCTION ${fn(o.onCreateFunction)}();
  END IF;
EXCEPTION WHEN insufficient_privilege THEN
  RAISE NOTICE 'nestjs-bemi: role "%" may not create event triggers, so tables created later will not be tracked automatically. After creating a table, run: SELECT ${fn(o.trackFunction).replace(/'/g, "''")}(''my_table''::regclass); or run this migration again (it is idempotent), or have a superuser run it.', current_user;
END
$bemi$;

-- From here in the WAL, context comes only in the trigger's format above: capture stops believing
-- messages in the old one (which only an old trigger, or a role emitting its own, still sends).
SELECT pg_catalog.pg_logical_emit_message(true, ${quoteLiteral(BEMI_TRUST_MESSAGE_PREFIX)}, ${quoteLiteral(String(CONTEXT_MESSAGE_VERSION))});
`;

  const down = `-- nestjs-bemi: statement-level context triggers (down)
DROP EVENT TRIGGER IF EXISTS ${o.eventTrigger};

DO $bemi$
DECLARE
  t record;
BEGIN
  IF pg_catalog.to_regprocedure(${quoteLiteral(`${home}.${o.emitFunction}()`)}) IS NULL THEN
    RETURN;
  END IF;
  FOR t IN
    SELECT tg.tgrelid AS rel, c.relkind, c.relreplident
    FROM pg_catalog.pg_trigger tg JOIN pg_catalog.pg_class c ON c.oid = tg.tgrelid
    WHERE tg.tgname = ${quoteLiteral(o.trigger)}
      AND tg.tgfoid = pg_catalog.to_regprocedure(${quoteLiteral(`${home}.${o.emitFunction}()`)})
  LOOP
    EXECUTE pg_catalog.format('DROP TRIGGER ${o.trigger} ON %s', t.rel::regclass);
${
  identityFull
    ? `    IF t.relkind = 'r' AND t.relreplident = 'f' THEN
      EXECUTE pg_catalog.format('ALTER TABLE %s REPLICA IDENTITY DEFAULT', t.rel::regclass);
    END IF;
`
    : ''
}  END LOOP;
END
$bemi$;

DROP FUNCTION IF EXISTS ${fn(o.onCreateFunction)}();
DROP FUNCTION IF EXISTS ${fn(o.trackFunction)}(oid);
DROP FUNCTION IF EXISTS ${fn(o.isTrackedFunction)}(oid);
DROP FUNCTION IF EXISTS ${fn(o.emitFunction)}();

-- PostgreSQL's default again: PUBLIC may call pg_logical_emit_message (where this role may grant it).
DO $bemi$
DECLARE
  f record;
BEGIN
  FOR f IN
    SELECT p.oid::regprocedure AS proc, p.proowner FROM pg_catalog.pg_proc p
    WHERE p.proname = 'pg_logical_emit_message' AND p.pronamespace = 'pg_catalog'::regnamespace
  LOOP
    IF pg_catalog.pg_has_role(current_user, f.proowner, 'USAGE') THEN
      EXECUTE pg_catalog.format('GRANT EXECUTE ON FUNCTION %s TO PUBLIC', f.proc);
    END IF;
  END LOOP;
END
$bemi$;
`;
  return { up, down };
}

function validateNames(names: unknown, option: string, allowEmpty = false): string[] {
  if (!Array.isArray(names) || (!allowEmpty && names.length === 0)) {
    throw new TypeError(`bemiMigrationSql: "${option}" must be a${allowEmpty ? 'n' : ' non-empty'} array of names.`);
  }
  for (const name of names) {
    if (typeof name !== 'string' || name.length === 0 || name.length > 63 || name.includes('\u0000')) {
      throw new TypeError(`bemiMigrationSql: "${option}" has an invalid name ${JSON.stringify(name)} (1-63 characters, no NUL).`);
    }
  }
  return [...new Set(names as string[])];
}
