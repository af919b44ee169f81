// The SQL that makes the trail append-only for the roles that read it: the recommended layout
// (the trail owned by the capture role, readers granted SELECT only) and, for setups with a
// single role, a guard trigger that refuses UPDATE, DELETE and TRUNCATE of `changes` outside
// retention's own runs. What each protects, and what not, is in docs/security.md.
import { quoteIdent, quoteLiteral, textArray } from '../shared/sql-quote';
import { DEFAULT_SCHEMA } from '../shared/postgres-names';
import { CHAIN_ANCHOR_TABLE } from './chain-anchor';
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

/** The trail's tables, for grants (`changes` first). */
export const TRAIL_TABLES: readonly string[] = [CHANGES_TABLE, CAPTURE_STATE_TABLE, SCHEMA_LOG_TABLE, RETENTION_HORIZON_TABLE, CHAIN_ANCHOR_TABLE];

/**
 * The recommended layout, idempotent: every trail table (and every partition of `changes`, at any
 * depth) owned by `owner`, nothing granted to PUBLIC, each reader allowed USAGE on the schema and
 * SELECT on the tables and nothing else (privileges it had are revoked); the append-only guard's
 * function, when installed, owned by `owner` too. Run it as a superuser or as a member of both the
 * current owner and `owner`. Readers cannot change the trail nor disable its triggers (only owners
 * may); `owner` can, which is why it should be a role the application never uses.
 *
 * It refuses, changing nothing: a role that does not exist (SQLSTATE 42704), a trail with any of
 * its four tables missing (42P01: a reader would get no SELECT on a table created later by the
 * owner), and a reader that is a superuser or a member of `owner` (42501: it could change the
 * trail anyway). It warns when a reader owns the schema (a schema's owner may drop its tables).
 */
export function bemiTrailRolesSql(options: TrailRolesSqlOptions): string {
  const schema = options.schema ?? DEFAULT_SCHEMA;
  for (const [name, value] of [['owner', options.owner], ...options.readers.map((r) => ['readers', r])] as const) {
    if (typeof value !== 'string' || value === '' || value.length > 63) throw new TypeError(`bemiTrailRolesSql: "${name}" must be a role name of 1-63 characters, got ${JSON.stringify(value)}.`);
  }
  // The names are quoted literals inside a $bemi$ body: that delimiter would end the body early.
  for (const value of [schema, options.owner, ...options.readers]) {
    if (value.includes('$bemi$')) throw new TypeError(`bemiTrailRolesSql: names cannot contain "$bemi$", got ${JSON.stringify(value)}.`);
  }
  if (options.readers.includes(options.owner)) throw new TypeError(`bemiTrailRolesSql: the owner "${options.owner}" cannot also be a reader (an owner may change the trail).`);
  const owner = quoteLiteral(options.owner);
  const readers = `${textArray(options.readers)}::text[]`;
  const nsp = quoteLiteral(schema);
  const changes = quoteLiteral(`${quoteIdent(schema)}.${quoteIdent(CHANGES_TABLE)}`);
  const guard = quoteLiteral(`${quoteIdent(schema)}.${quoteIdent(APPEND_ONLY_GUARD)}()`);
  return `-- nestjs-bemi: the trail owned by ${options.owner}, read-only for ${options.readers.join(', ') || 'nobody'}
DO $bemi$
DECLARE
  t regclass;
  r text;
  missing text;
BEGIN
  SELECT pg_catalog.string_agg(pg_catalog.quote_ident(x), ', ' ORDER BY i) INTO missing FROM pg_catalog.unnest(ARRAY[${owner}]::text[] || ${readers}) WITH ORDINALITY AS u(x, i)
   WHERE NOT EXISTS (SELECT FROM pg_catalog.pg_roles WHERE rolname = x);
  IF missing IS NOT NULL THEN
    RAISE EXCEPTION 'nestjs-bemi: role(s) % do not exist', missing USING ERRCODE = 'undefined_object',
      HINT = 'Create them first (CREATE ROLE <name> LOGIN PASSWORD ...), then run this again.';
  END IF;
  -- All four or nothing: a table the owner creates later would have no SELECT for the readers.
  SELECT pg_catalog.string_agg(pg_catalog.format('%I.%I', ${nsp}, x), ', ' ORDER BY i) INTO missing FROM pg_catalog.unnest(${textArray(TRAIL_TABLES)}) WITH ORDINALITY AS u(x, i)
   WHERE pg_catalog.to_regclass(pg_catalog.format('%I.%I', ${nsp}, x)) IS NULL;
  IF missing IS NOT NULL THEN
    RAISE EXCEPTION 'nestjs-bemi: the trail is not there yet: no table %', missing USING ERRCODE = 'undefined_table',
      HINT = 'Start the capture worker once (it creates the trail tables) or run bemiChangesTableSql().up first, then run this again.';
  END IF;
  FOREACH r IN ARRAY ${readers} LOOP
    IF (SELECT rolsuper FROM pg_catalog.pg_roles WHERE rolname = r) OR pg_catalog.pg_has_role(r, ${owner}, 'MEMBER') THEN
      RAISE EXCEPTION 'nestjs-bemi: reader % is a superuser or a member of the owner %: it could change the trail', pg_catalog.quote_ident(r), pg_catalog.quote_ident(${owner})
        USING ERRCODE = 'insufficient_privilege', HINT = pg_catalog.format('Use a reader that is neither (REVOKE %I FROM %I; ALTER ROLE %I NOSUPERUSER).', ${owner}, r, r);
    END IF;
    IF EXISTS (SELECT FROM pg_catalog.pg_namespace n WHERE n.nspname = ${nsp} AND pg_catalog.pg_has_role(r, n.nspowner, 'MEMBER')) THEN
      RAISE WARNING 'nestjs-bemi: reader % owns schema %, so it may still drop the trail tables', pg_catalog.quote_ident(r), pg_catalog.quote_ident(${nsp})
        USING HINT = 'Give the schema to another role (ALTER SCHEMA ... OWNER TO ...), or keep the trail in a schema of its own.';
    END IF;
  END LOOP;
  FOR t IN
    SELECT pg_catalog.to_regclass(pg_catalog.format('%I.%I', ${nsp}, x)) FROM pg_catalog.unnest(${textArray(TRAIL_TABLES)}) x
    UNION
    -- ALTER TABLE ... OWNER does not recurse, and a reader that owned a partition could change it directly.
    SELECT relid FROM pg_catalog.pg_partition_tree(pg_catalog.to_regclass(${changes}))
  LOOP
    EXECUTE pg_catalog.format('ALTER TABLE %s OWNER TO %I', t, ${owner});
    EXECUTE pg_catalog.format('REVOKE ALL ON %s FROM PUBLIC', t);
    FOREACH r IN ARRAY ${readers} LOOP
      EXECUTE pg_catalog.format('REVOKE ALL ON %s FROM %I', t, r);
      EXECUTE pg_catalog.format('GRANT SELECT ON %s TO %I', t, r);
    END LOOP;
  END LOOP;
  -- The guard runs as whoever deletes from changes (retention, as the owner): a reader that owned
  -- its function could replace the body and run its own statements as the owner.
  IF pg_catalog.to_regprocedure(${guard}) IS NOT NULL THEN
    EXECUTE pg_catalog.format('ALTER FUNCTION %s OWNER TO %I', pg_catalog.to_regprocedure(${guard}), ${owner});
  END IF;
  FOREACH r IN ARRAY ${readers} LOOP
    EXECUTE pg_catalog.format('GRANT USAGE ON SCHEMA %I TO %I', ${nsp}, r);
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
