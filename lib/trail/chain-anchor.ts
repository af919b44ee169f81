import { DEFAULT_SCHEMA } from '../shared/postgres-names';
import { quoteIdent } from '../shared/sql-quote';

/**
 * Per source database, the newest change retention deleted from a chained trail: its place and
 * hash. Verify starts the chain there, so pruning leaves it verifiable and a row deleted right
 * after the boundary is still seen.
 */
export const CHAIN_ANCHOR_TABLE = '_bemi_chain_anchor';

/** DDL of `_bemi_chain_anchor` (part of `bemiChangesTableSql().up`; retention creates it on older trails). Idempotent. */
export function chainAnchorTableSql(schema: string = DEFAULT_SCHEMA): string {
  return `-- Where retention cut a chained trail (docs/verify.md): the last deleted change's place and hash.
CREATE TABLE IF NOT EXISTS ${quoteIdent(schema)}.${quoteIdent(CHAIN_ANCHOR_TABLE)} (
  database text PRIMARY KEY,
  commit_position bigint NOT NULL,
  seq integer NOT NULL,
  chain_hash bytea NOT NULL,
  committed_at timestamptz NOT NULL,
  updated_at timestamptz NOT NULL DEFAULT now()
);`;
}
