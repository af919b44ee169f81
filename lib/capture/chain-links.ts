// The worker's side of the hash chain (capture's `chain` option): links each change, in stream
// order, to the one stored before it. One instance per session, shared by both destination
// writers, and started from the last row the destination holds: a session never links from a
// row that was not stored.
import type { Client } from 'pg';
import { quoteIdent } from '../shared/sql-quote';
import { CHANGES_TABLE } from '../trail/changes-table';
import { CHAIN_ANCHOR_TABLE } from '../trail/chain-anchor';
import { chainContent, isoToMicros, linkHash, type ChainedColumn } from '../trail/change-chain';
import { storedContext, type ChangeRow } from './pgoutput-stitcher';

/** A stored change's place and hash (hash null: written with the chain off, so the next link starts a chain). */
export interface ChainPoint {
  commitPosition: string;
  seq: number;
  hash: Buffer | null;
}

/** What the chain columns of one row hold. */
export interface ChainLink {
  hash: Buffer;
  /** The predecessor's place; null at the start of a chain. */
  previous: { commitPosition: string; seq: number } | null;
}

/** A row on its way to the destination, with its link once the chain is on. */
export type ChainedRow = ChangeRow & { chain?: ChainLink };

/** Where a batch's links start and end; `end` moves when the batch had to be linked again. */
export interface BatchChain {
  start: ChainPoint | null;
  end: ChainPoint | null;
}

export class ChainLinks {
  /** The end of the last batch linked (prepared): the next batch is linked from here. */
  private prepared: ChainPoint | null;
  /** The end of the last batch written in stream order (see ChangesWriter.joinChain). */
  joined: ChainPoint | null;
  private lastIso = '';
  private lastMicros = '';

  constructor(
    private readonly key: string | undefined,
    head: ChainPoint | null,
  ) {
    this.prepared = head;
    this.joined = head;
  }

  /**
   * Links rows after the last prepared batch. Rows at or before it are left out: stored already
   * (a re-delivery after a reconnect), and linking them again would fork the chain.
   */
  link(rows: readonly ChangeRow[]): { rows: ChainedRow[]; chain: BatchChain } {
    const start = this.prepared;
    const fresh = start ? rows.filter((r) => after(r, start)) : (rows as ChangeRow[]);
    const end = this.relink(fresh, start);
    this.prepared = end;
    return { rows: fresh, chain: { start, end } };
  }

  /** Links rows in order from `from`, replacing their links; returns where they end. */
  relink(rows: readonly ChainedRow[], from: ChainPoint | null): ChainPoint | null {
    let point = from;
    for (const row of rows) {
      const hash = linkHash(point?.hash ?? null, chainContent((c) => this.value(row, c)), this.key);
      row.chain = { hash, previous: point?.hash ? { commitPosition: point.commitPosition, seq: point.seq } : null };
      point = { commitPosition: row.commitPosition, seq: row.seq, hash };
    }
    return point;
  }

  /** A batch ended at `end` instead of `was`: batches not yet linked start from there. */
  moved(was: ChainPoint | null, end: ChainPoint | null): void {
    if (this.prepared === was) this.prepared = end;
  }

  private value(row: ChangeRow, c: ChainedColumn): string | number | null {
    // What is stored is hashed: a row that shares its holder's context stores none (context_seq says whose).
    if (c.field === 'context') return storedContext(row);
    const v = (row as unknown as Record<string, string | number | null | undefined>)[c.field] ?? null;
    if (c.kind !== 'micros' || v === null) return v;
    // Rows of one transaction share their commit time.
    if (v !== this.lastIso) {
      this.lastIso = v as string;
      this.lastMicros = isoToMicros(this.lastIso);
    }
    return this.lastMicros;
  }
}

/** Same place and hash (both absent counts as the same). */
export function samePoint(a: ChainPoint | null, b: ChainPoint | null): boolean {
  if (a === b) return true;
  if (!a || !b) return false;
  return a.commitPosition === b.commitPosition && a.seq === b.seq && (a.hash === b.hash || (a.hash !== null && b.hash !== null && a.hash.equals(b.hash)));
}

/** Whether `row` comes after `point` in stream order (commit positions are decimal text without leading zeros). */
function after(row: ChangeRow, point: ChainPoint): boolean {
  const a = row.commitPosition;
  const b = point.commitPosition;
  if (a.length !== b.length) return a.length > b.length;
  if (a !== b) return a > b;
  return row.seq > point.seq;
}

/**
 * The last change of `database` the destination holds, where a session's chain continues; null
 * for none. When retention pruned past every stored change, the anchor it left is the head.
 */
export async function loadChainHead(client: Client, schema: string, database: string): Promise<ChainPoint | null> {
  const anchors = `${quoteIdent(schema)}.${quoteIdent(CHAIN_ANCHOR_TABLE)}`;
  const { rows: exists } = await client.query<{ anchors: boolean }>(`SELECT pg_catalog.to_regclass($1) IS NOT NULL AS anchors`, [anchors]);
  // Ordered by the table's columns (c.), not by the text alias of the select list.
  const { rows } = await client.query<{ commit_position: string; seq: number; chain_hash: Buffer | null }>(
    `SELECT h.commit_position::text AS commit_position, h.seq, h.chain_hash FROM (
       (SELECT c.commit_position, c.seq, c.chain_hash FROM ${quoteIdent(schema)}.${quoteIdent(CHANGES_TABLE)} AS c
         WHERE c.database = $1 ORDER BY c.commit_position DESC, c.seq DESC LIMIT 1)
       ${exists[0].anchors ? `UNION ALL SELECT a.commit_position, a.seq, a.chain_hash FROM ${anchors} AS a WHERE a.database = $1` : ''}
     ) AS h ORDER BY h.commit_position DESC, h.seq DESC LIMIT 1`,
    [database],
  );
  return rows[0] ? { commitPosition: rows[0].commit_position, seq: rows[0].seq, hash: rows[0].chain_hash } : null;
}
