// Whose context capture believes. The trigger names the roles of every statement; a context sent
// by any other role is kept, apart, and never presented as the actor of the change.
import type { Client } from 'pg';
import { BEMI_SQL_OBJECTS } from '../migration/bemi-migration-sql';
import type { CaptureLogger } from '../options/capture-options';
import type { MessageRoles } from './context-message';

/** What decides whether a context message is believed. One per session; the stream may tighten it. */
export class ContextTrust {
  constructor(
    /** Roles whose context is believed (as the role acted as, or as the role that logged in); undefined: any. */
    readonly roles: ReadonlySet<string> | undefined,
    /**
     * Whether a message in the old format (context alone, no roles) is believed: only while a
     * trigger older than the roles header may still send it.
     */
    private oldFormatBelieved: boolean,
  ) {}

  /** Why a message with these roles (undefined: the old format) is not believed; undefined if it is. */
  doubt(roles: MessageRoles | undefined): string | undefined {
    if (!roles) return this.oldFormatBelieved ? undefined : 'a context message without roles, which the trigger no longer sends';
    if (!this.roles || this.roles.has(roles.role) || this.roles.has(roles.sessionRole)) return undefined;
    return roles.role === roles.sessionRole ? `role "${roles.role}" is not trusted` : `roles "${roles.role}" (session "${roles.sessionRole}") are not trusted`;
  }

  /** The trigger migration ran (its message is in the stream): from here, old-format messages are not the trigger's. */
  triggerUpgraded(): void {
    this.oldFormatBelieved = false;
  }
}

interface TrustFacts {
  owners: string[] | null;
  old_triggers: string[] | null;
  public_may_emit: boolean;
  me: string;
}

/**
 * The trust in force for a session: `trustedRoles` when given, else the roles that own the
 * trigger functions (the role the migration ran as) and the worker's own source role (the
 * application's role when capture uses its connection). Warns, once per worker, about what weakens it.
 */
export async function readContextTrust(source: Client, trustedRoles: readonly string[] | undefined, logger: CaptureLogger, first: boolean): Promise<ContextTrust> {
  const { rows } = await source.query<TrustFacts>(
    `SELECT array_agg(DISTINCT pg_catalog.pg_get_userbyid(p.proowner)::text) AS owners,
            array_agg(DISTINCT n.nspname::text) FILTER (WHERE NOT p.prosecdef) AS old_triggers,
            EXISTS (
              SELECT 1 FROM pg_catalog.pg_proc e, pg_catalog.aclexplode(COALESCE(e.proacl, pg_catalog.acldefault('f', e.proowner))) a
              WHERE e.proname = 'pg_logical_emit_message' AND e.pronamespace = 'pg_catalog'::regnamespace AND a.grantee = 0 AND a.privilege_type = 'EXECUTE'
            ) AS public_may_emit,
            current_user::text AS me
     FROM pg_catalog.pg_proc p JOIN pg_catalog.pg_namespace n ON n.oid = p.pronamespace
     WHERE p.proname = $1 AND p.pronargs = 0`,
    [BEMI_SQL_OBJECTS.emitFunction],
  );
  const facts = rows[0];
  const roles = new Set(trustedRoles ?? [...(facts.owners ?? []), facts.me]);
  const oldTriggers = facts.old_triggers ?? [];
  if (first) {
    logger.log(`Context is believed from role(s) ${[...roles].map((r) => `"${r}"`).join(', ')}${trustedRoles ? '' : ' (the trigger functions\' owners and this worker\'s role; set capture.trustedRoles to choose)'}; other roles' context is stored under "_bemi"."untrusted".`);
    if (oldTriggers.length) {
      logger.warn(
        `The context trigger in schema(s) ${oldTriggers.join(', ')} predates roles: its changes are stored without a role, and its context is believed from any role. ` +
          `Generate and run the trigger migration again (npx nestjs-bemi migration:create; it is idempotent). See docs/security.md.`,
      );
    }
    if (facts.public_may_emit && facts.owners) {
      logger.warn(
        `Any role may still call pg_logical_emit_message, so any role can send a context message of its own and name any role in it. ` +
          `Run the trigger migration as a superuser, or have one run REVOKE EXECUTE ON FUNCTION pg_logical_emit_message FROM PUBLIC for each of its overloads. See docs/security.md.`,
      );
    }
  }
  return new ContextTrust(roles, oldTriggers.length > 0);
}
