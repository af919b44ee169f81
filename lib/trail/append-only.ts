// The SQL that makes the trail append-only for the roles that read it: the recommended layout
// (the trail owned by the capture role, readers granted SELECT only) and, for setups with a
// single role, a guard trigger that refuses UPDATE, DELETE and TRUNCATE of `changes` outside
// retention's own runs. What each protects, and what not, is in docs/security.md.
import { quoteIdent, quoteLiteral, textArray } from '../shared/sql-quote';
import { DEFAULT_SCHEMA } from '../shared/postgres-names';
import { CAPTURE_STATE_TABLE, CHANGES_TABLE, RETENTION_HORIZON_TABLE, SCHEMA_LOG_TABLE } from './changes-table';

/** Transaction- or session-level setting retention turns on for its own deletes (the guard lets them through). */
export const RETENTION_SETTING = 'bemi.retention';

/** Name of the guard trigger on `changes` (and of its function). */
export const APPEND_ONLY_GUARD = '_bemi_changes_guard';

export interface TrailRolesSqlOptions {
  /** Schema of the trail. Default `public`. */
  schema?: string;
  /** The role that owns the trail: the capture worker's (it writes `changes`) and retention's. */
  owner: string;
  /** Roles that read the trail (the application's, for history): SELECT only. */
  readers: string[];
}

/** The trail's tables, for grants. */
const TRAIL_TABLES = [CHANGES_TABLE, CAPTURE_STATE_TABLE, SCHEMA_LOG_TABLE, RETENTION_HORIZON_TABLE];

/**
 * The recommended layout, idempotent: every trail table (and partition of `changes`) owned by
 * `owner`, nothing granted to PUBLIC, each reader allowed USAGE on the schema and SELECT on the
 * tables and nothing else (privileges it had are revoked). Run it as a superuser or as a member of
 * both the current owner and `owner`. Readers cannot change the trail nor disable its triggers
 * (only owners may); `owner` can, which is why it should be a role the application never uses.
 */
export function bemiTrailRolesSql(options: TrailRolesSqlOptions): string {
  const schema = options.schema ?? DEFAULT_SCHEMA;
  for (const [name, value] of [['owner', options.owner], ...options.readers.map((r) => ['readers', r])] as const) {
    if (typeof value !== 'string' || value === '' || value.length > 63) throw new TypeError(`bemiTrailRolesSql: "${name}" must be a role name of 1-63 characters, got ${JSON.stringify(value)}.`);
  }
  if (options.readers.includes(options.owner)) throw new TypeError(`bemiTrailRolesSql: the owner "${options.owner}" cannot also be a reader (an owner may change the trail).`);
  return `-- nestjs-bemi: the trail owned by ${options.owner}, read-only for ${options.readers.join(', ') || 'nobody'}
DO $bemi$
DECLARE
  t regclass;
  r text;
BEGIN
  FOR t IN
    SELECT c.oid::regclass FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
     WHERE n.nspname = ${quoteLiteral(schema)} AND c.relname = ANY (${textArray(TRAIL_TABLES)})
    UNION
    SELECT i.inhrelid::regclass FROM pg_catalog.pg_inherits i
     WHERE i.inhparent = pg_catalog.to_regclass(${quoteLiteral(`${quoteIdent(schema)}.${quoteIdent(CHANGES_TABLE)}`)})
  LOOP
    EXECUTE pg_catalog.format('ALTER TABLE %s OWNER TO %I', t, ${quoteLiteral(options.owner)});
    EXECUTE pg_catalog.format('REVOKE ALL ON %s FROM PUBLIC', t);
    FOREACH r IN ARRAY ${textArray(options.readers)}::text[] LOOP
      EXECUTE pg_catalog.format('REVOKE ALL ON %s FROM %I', t, r);
      EXECUTE pg_catalog.format('GRANT SELECT ON %s TO %I', t, r);
    END LOOP;
  END LOOP;
  FOREACH r IN ARRAY ${textArray(options.readers)}::text[] LOOP
    EXECUTE pg_catalog.format('GRANT USAGE ON SCHEMA %I TO %I', ${quoteLiteral(schema)}, r);
  END LOOP;
END
$bemi$;
`;
}

/**
 * For a single-role setup: a statement trigger on `changes` that refuses UPDATE, DELETE and
 * TRUNCATE unless the transaction or session turned on `bemi.retention` (pruning does). It stops
 * an accidental or naive change of the trail, with a message that says so; it is no boundary
 * against a role that means it (that role may set the setting, or, as the owner, drop the
 * trigger): for that, use bemiTrailRolesSql(). Idempotent; `down` removes it.
 */
export function bemiAppendOnlyGuardSql(options: { schema?: string } = {}): { up: string; down: string } {
  const s = quoteIdent(options.schema ?? DEFAULT_SCHEMA);
  const changes = `${s}.${quoteIdent(CHANGES_TABLE)}`;
  const fn = `${s}.${quoteIdent(APPEND_ONLY_GUARD)}`;
  const up = `-- nestjs-bemi: changes is append-only outside retention (up)
CREATE OR REPLACE FUNCTION ${fn}() RETURNS trigger
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $bemi$
BEGIN
  IF pg_catalog.current_setting(${quoteLiteral(RETENTION_SETTING)}, true) = 'on' THEN
    RETURN NULL;
  END IF;
  RAISE EXCEPTION 'nestjs-bemi: % of %.% is refused: the audit trail is append-only', TG_OP, TG_TABLE_SCHEMA, TG_TABLE_NAME
    USING ERRCODE = 'insufficient_privilege',
          HINT = 'Old changes are removed by retention (npx nestjs-bemi prune, or BemiModule.forRoot({ retention })). See docs/security.md.';
END
$bemi$;
CREATE OR REPLACE TRIGGER ${quoteIdent(APPEND_ONLY_GUARD)} BEFORE UPDATE OR DELETE OR TRUNCATE ON ${changes}
  FOR EACH STATEMENT EXECUTE FUNCTION ${fn}();
`;
  const down = `-- nestjs-bemi: changes is append-only outside retention (down)
DROP TRIGGER IF EXISTS ${quoteIdent(APPEND_ONLY_GUARD)} ON ${changes};
DROP FUNCTION IF EXISTS ${fn}();
`;
  return { up, down };
}
