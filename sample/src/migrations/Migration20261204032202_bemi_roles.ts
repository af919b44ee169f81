// nestjs-bemi: context triggers for the audit trail.
// Generated 2026-12-04T03:22:02Z by `npx nestjs-bemi migration:create --path sample/src/migrations --name bemi_roles`.
// Schemas: "public". REPLICA IDENTITY FULL: yes.
//
// up() installs, on every table of those schemas (except "changes", "mikro_orm_migrations"
// and _bemi* tables), a statement-level trigger "_bemi_context" that copies the request context
// nestjs-bemi puts in a leading SQL comment into the write-ahead log, as a transactional
// logical message with prefix "_bemi" that also names the statement's database roles. An event
// trigger "_bemi_track_new_tables" does the same for tables created later (it needs a superuser; without
// one, up() explains the manual step). It takes pg_logical_emit_message away from PUBLIC, so that
// only the trigger emits context (that needs a superuser too; without one, up() warns what to run).
// It also sets REPLICA IDENTITY FULL on those tables, so that updates and deletes carry the whole old row.
// Needs PostgreSQL 14+ and wal_level=logical. Running up() again is harmless.
//
// down() removes the triggers, the event trigger and the _bemi_* functions, gives PUBLIC back
// pg_logical_emit_message, and resets REPLICA IDENTITY to DEFAULT on the tables that had
// the trigger.
// Undo: npx mikro-orm migration:down (reverts the latest migration; --to <name> for older ones).
//
// The SQL is frozen at generation time like any migration: upgrading nestjs-bemi does not change
// it. To track other schemas later, generate a new migration rather than editing this one.

import { Migration } from '@mikro-orm/migrations';

const BEMI_UP = `-- nestjs-bemi: statement-level context triggers (up)
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
CREATE OR REPLACE FUNCTION "public"._bemi_emit_context() RETURNS trigger
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
  IF pg_catalog.starts_with(query, '/*Bemi ') THEN
    stop := pg_catalog.strpos(query, ' Bemi*/');
    IF stop > 7 THEN
      PERFORM pg_catalog.pg_logical_emit_message(true, '_bemi', pg_catalog.json_build_array(acting, session_user)::text || E'\\n' || pg_catalog.substr(query, 8, stop - 8));
      PERFORM pg_catalog.set_config('bemi.context_emitted', '+', true);
      RETURN NULL;
    END IF;
  END IF;
  -- No context on this statement: say so (and who runs it) once per transaction and roles, which
  -- also resets the context an earlier statement of this transaction set. The key names both
  -- roles unambiguously (the first one's length first); the JSON is built only to emit.
  who := pg_catalog.length(acting) || ':' || acting || session_user;
  IF pg_catalog.current_setting('bemi.context_emitted', true) IS DISTINCT FROM who THEN
    PERFORM pg_catalog.pg_logical_emit_message(true, '_bemi', pg_catalog.json_build_array(acting, session_user)::text || E'\\n');
    PERFORM pg_catalog.set_config('bemi.context_emitted', who, true);
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
CREATE OR REPLACE FUNCTION "public"._bemi_is_tracked(rel oid) RETURNS boolean
LANGUAGE sql STABLE AS $bemi$
  SELECT EXISTS (
    SELECT 1
    FROM pg_catalog.pg_class c
    JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
    WHERE c.oid = rel
      AND c.relkind IN ('r', 'p')
      AND c.relpersistence = 'p'
      AND n.nspname = ANY (ARRAY['public']::text[])
      AND NOT (c.relname = ANY (ARRAY['changes', 'mikro_orm_migrations']::text[]))
      AND c.relname NOT LIKE '\\_bemi%'
      AND NOT EXISTS (
        SELECT 1 FROM pg_catalog.pg_depend d
        WHERE d.classid = 'pg_catalog.pg_class'::regclass AND d.objid = c.oid AND d.deptype = 'e'
      )
  )
$bemi$;

CREATE OR REPLACE FUNCTION "public"._bemi_track_table(rel oid) RETURNS void
LANGUAGE plpgsql AS $bemi$
BEGIN
  EXECUTE pg_catalog.format(
    'CREATE OR REPLACE TRIGGER _bemi_context BEFORE INSERT OR UPDATE OR DELETE OR TRUNCATE ON %s FOR EACH STATEMENT EXECUTE FUNCTION "public"._bemi_emit_context()',
    rel::regclass);
  IF (SELECT c.relkind FROM pg_catalog.pg_class c WHERE c.oid = rel) = 'r' THEN
    EXECUTE pg_catalog.format('ALTER TABLE %s REPLICA IDENTITY FULL', rel::regclass);
  END IF;
END
$bemi$;

DO $bemi$
DECLARE
  rel oid;
BEGIN
  FOR rel IN
    SELECT c.oid FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
    WHERE n.nspname = ANY (ARRAY['public']::text[]) ORDER BY c.oid
  LOOP
    IF "public"._bemi_is_tracked(rel) THEN
      PERFORM "public"._bemi_track_table(rel);
    END IF;
  END LOOP;
END
$bemi$;

-- Tables created later get the trigger from an event trigger. Creating one needs superuser
-- (or the managed-service equivalent); without it, the step is explained instead of failing.
CREATE OR REPLACE FUNCTION "public"._bemi_on_create_table() RETURNS event_trigger
LANGUAGE plpgsql AS $bemi$
DECLARE
  created record;
BEGIN
  FOR created IN SELECT objid FROM pg_catalog.pg_event_trigger_ddl_commands() WHERE object_type = 'table' LOOP
    IF "public"._bemi_is_tracked(created.objid) THEN
      PERFORM "public"._bemi_track_table(created.objid);
    END IF;
  END LOOP;
END
$bemi$;

DO $bemi$
BEGIN
  IF NOT EXISTS (SELECT 1 FROM pg_catalog.pg_event_trigger WHERE evtname = '_bemi_track_new_tables') THEN
    CREATE EVENT TRIGGER _bemi_track_new_tables ON ddl_command_end
      WHEN TAG IN ('CREATE TABLE', 'CREATE TABLE AS', 'SELECT INTO')
      EXECUTE FUNCTION "public"._bemi_on_create_table();
  END IF;
EXCEPTION WHEN insufficient_privilege THEN
  RAISE NOTICE 'nestjs-bemi: role "%" may not create event triggers, so tables created later will not be tracked automatically. After creating a table, run: SELECT "public"._bemi_track_table(''my_table''::regclass); or run this migration again (it is idempotent), or have a superuser run it.', current_user;
END
$bemi$;

-- From here in the WAL, context comes only in the trigger's format above: capture stops believing
-- messages in the old one (which only an old trigger, or a role emitting its own, still sends).
SELECT pg_catalog.pg_logical_emit_message(true, '_bemi_trust', '2');
`;

const BEMI_DOWN = `-- nestjs-bemi: statement-level context triggers (down)
DROP EVENT TRIGGER IF EXISTS _bemi_track_new_tables;

DO $bemi$
DECLARE
  t record;
BEGIN
  IF pg_catalog.to_regprocedure('"public"._bemi_emit_context()') IS NULL THEN
    RETURN;
  END IF;
  FOR t IN
    SELECT tg.tgrelid AS rel, c.relkind, c.relreplident
    FROM pg_catalog.pg_trigger tg JOIN pg_catalog.pg_class c ON c.oid = tg.tgrelid
    WHERE tg.tgname = '_bemi_context'
      AND tg.tgfoid = pg_catalog.to_regprocedure('"public"._bemi_emit_context()')
  LOOP
    EXECUTE pg_catalog.format('DROP TRIGGER _bemi_context ON %s', t.rel::regclass);
    IF t.relkind = 'r' AND t.relreplident = 'f' THEN
      EXECUTE pg_catalog.format('ALTER TABLE %s REPLICA IDENTITY DEFAULT', t.rel::regclass);
    END IF;
  END LOOP;
END
$bemi$;

DROP FUNCTION IF EXISTS "public"._bemi_on_create_table();
DROP FUNCTION IF EXISTS "public"._bemi_track_table(oid);
DROP FUNCTION IF EXISTS "public"._bemi_is_tracked(oid);
DROP FUNCTION IF EXISTS "public"._bemi_emit_context();

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

export class Migration20261204032202_bemi_roles extends Migration {
  override async up(): Promise<void> {
    this.addSql(BEMI_UP);
  }

  override async down(): Promise<void> {
    this.addSql(BEMI_DOWN);
  }
}
