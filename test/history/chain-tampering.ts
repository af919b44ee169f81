// What an attacker with write access to `changes` does in the verify specs, on a copy of the trail
// (so each test tampers with a fresh one): edit, delete, insert, move rows, and recompute links.
import { quoteIdent } from '../../lib/shared/sql-quote';
import { CHAINED_COLUMNS, chainContent, chainedColumnSql, linkHash } from '../../lib/trail/change-chain';
import type { TestDatabase } from '../support/database';

/** A copy of `changes` named `name` (no unique key, so rows can be moved freely). */
export async function copyTrail(db: TestDatabase, name: string): Promise<void> {
  await db.query(`DROP TABLE IF EXISTS ${quoteIdent(name)}; CREATE TABLE ${quoteIdent(name)} (LIKE changes INCLUDING DEFAULTS); INSERT INTO ${quoteIdent(name)} SELECT * FROM changes`);
}

export interface StoredLink {
  commit_position: string;
  seq: number;
  hash: string | null;
  previous_position: string | null;
  previous_seq: number | null;
}

/** The chain columns of every row of `table`, in stream order. */
export async function links(db: TestDatabase, table = 'changes'): Promise<StoredLink[]> {
  return db.query(
    `SELECT commit_position::text, seq, encode(chain_hash, 'hex') AS hash, chain_previous_position::text AS previous_position, chain_previous_seq AS previous_seq
       FROM ${quoteIdent(table)} AS t ORDER BY t.commit_position, t.seq`,
  );
}

/**
 * Recomputes the links of `table` from the row at (commitPosition, seq) on, as someone who can
 * write the table but (with `key` absent) does not know the key would: every later link holds again.
 */
export async function relinkFrom(db: TestDatabase, table: string, from: { commitPosition: string; seq: number }, key?: string, only?: number): Promise<void> {
  const cols = CHAINED_COLUMNS.map((c, i) => `${chainedColumnSql(c, quoteIdent)} AS c${i}`).join(', ');
  const rows = await db.query<Record<string, string | null> & { commit_position: string; seq: number; hash: string | null }>(
    `SELECT commit_position::text, seq, encode(chain_hash, 'hex') AS hash, ${cols} FROM ${quoteIdent(table)} AS t ORDER BY t.commit_position, t.seq`,
  );
  const start = rows.findIndex((r) => r.commit_position === from.commitPosition && r.seq === from.seq);
  if (start < 0) throw new Error('relinkFrom: no such row');
  let previous = start > 0 ? rows[start - 1] : undefined;
  const end = only === undefined ? rows.length : start + only;
  for (const r of rows.slice(start, end)) {
    let i = 0;
    const hash = linkHash(previous?.hash ? Buffer.from(previous.hash, 'hex') : null, chainContent(() => r[`c${i++}`]), key);
    await db.query(
      `UPDATE ${quoteIdent(table)} SET chain_hash = $1, chain_previous_position = $2, chain_previous_seq = $3 WHERE commit_position = $4 AND seq = $5`,
      [hash, previous?.commit_position ?? null, previous?.seq ?? null, r.commit_position, r.seq],
    );
    r.hash = hash.toString('hex');
    previous = r;
  }
}
