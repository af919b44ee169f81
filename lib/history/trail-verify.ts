// Verify walks the trail in stream order, page by page, and links every chained row again from
// what it reads back. Each source database has its own chain (one worker writes it), so rows of
// several databases in one trail are followed side by side.
import { chainContent, CHAINED_COLUMNS, linkHash } from '../trail/change-chain';
import type {
  TrailChainAnchor,
  TrailChainBreak,
  TrailChainHead,
  TrailPosition,
  TrailVerifyCounts,
  TrailVerifyOptions,
  TrailVerifyResult,
} from './trail-verify.interfaces';
import { TrailVerifySql, type VerifyDatabase, type VerifyRow } from './trail-verify.sql';

export { type VerifyDatabase } from './trail-verify.sql';

const DEFAULT_PAGE_SIZE = 5000;
/** The aliases of the chained columns in a page row, in CHAINED_COLUMNS order. */
const CONTENT_KEYS = CHAINED_COLUMNS.map((_, i) => `c${i}` as const);

/** A row already read (or an anchor): its place and hash. */
interface Link {
  commitPosition: bigint;
  seq: number;
  hash: Buffer;
}

/** A row being checked. */
interface Row extends Link {
  previous: { commitPosition: bigint; seq: number } | null;
}

interface ChainState {
  begun: boolean;
  anchor?: Link;
  prev?: Row;
  prevPrev?: Row;
  /** A row whose link failed: edited, unless the next row shows it was inserted. */
  pending?: { row: Row; expected: Link | null; detail: string };
  expect?: { head: TrailChainHead; seen: boolean };
}

/** Thrown inside the walk at the first broken link. */
class Broken {
  constructor(readonly broken: TrailChainBreak) {}
}

/** Verifies the chain of the trail `schema`.`table`; see BemiHistory.verify(). */
export async function verifyTrail(db: VerifyDatabase, schema: string, table: string, options: TrailVerifyOptions = {}): Promise<TrailVerifyResult> {
  const sql = new TrailVerifySql(db, schema, table);
  const counts: TrailVerifyCounts = { rows: 0, chained: 0, unchained: 0, unverifiable: 0 };
  const described = await sql.describe();
  if (!described.table) throw new Error(`No table ${schema}.${table}: check the schema and table (capture's "schema", history's "table").`);
  if (!described.chain) {
    return { ...counts, ok: false, status: 'not-enabled', detail: `${schema}.${table} has no chain columns: the chain is not enabled. Run bemiChangesTableSql().up (or start capture once with ensureSchema), and capture with chain: true (CLI: --chain).` };
  }
  const anchors: TrailChainAnchor[] = described.anchors
    ? (await sql.anchorRows()).map((a) => ({ database: a.database, commitPosition: a.commit_position, seq: a.seq, hash: a.hash, committedAt: a.committed_at }))
    : [];
  const states = new Map<string, ChainState>();
  const state = (database: string): ChainState => {
    let s = states.get(database);
    if (!s) {
      const a = anchors.find((x) => x.database === database);
      s = { begun: a !== undefined, anchor: a && { commitPosition: BigInt(a.commitPosition), seq: a.seq, hash: Buffer.from(a.hash, 'hex') } };
      states.set(database, s);
    }
    return s;
  };
  const expected = options.expectHead === undefined ? [] : Array.isArray(options.expectHead) ? options.expectHead : [options.expectHead];
  for (const head of expected) state(head.database).expect = { head, seen: false };

  const walker = new ChainWalker(options.key, counts);
  const pageSize = options.pageSize ?? DEFAULT_PAGE_SIZE;
  const estimatedRows = options.onProgress ? await sql.estimatedRows() : 0;
  let after: TrailPosition | null = null;
  try {
    for (;;) {
      const page = await sql.page(after, pageSize);
      for (const r of page) walker.row(state(r.database), r);
      if (page.length > 0) {
        const last = page[page.length - 1];
        after = { commitPosition: last.commit_position, seq: last.seq };
      }
      options.onProgress?.({ rows: counts.rows, estimatedRows, position: after });
      if (page.length < pageSize) break;
    }
    for (const [database, s] of states) walker.end(database, s);
  } catch (e) {
    if (e instanceof Broken) return { ...counts, ok: false, status: 'broken', broken: e.broken, anchors };
    throw e;
  }
  // An empty trail is intact (nothing to check); rows none of which is chained mean the chain is off.
  if (counts.chained === 0 && anchors.length === 0 && counts.rows > 0) {
    return {
      ...counts,
      ok: false,
      status: 'not-enabled',
      detail: `No change in ${schema}.${table} carries a chain hash: the chain is not enabled. Capture with chain: true (CLI: --chain); changes written from then on are chained.`,
    };
  }
  const heads: TrailChainHead[] = [];
  for (const [database, s] of states) {
    if (s.prev) heads.push({ database, commitPosition: s.prev.commitPosition.toString(), seq: s.prev.seq, hash: s.prev.hash.toString('hex') });
  }
  return { ...counts, ok: true, status: 'intact', heads, anchors };
}

class ChainWalker {
  /** The content of the row being checked. */
  private content = '';

  constructor(
    private readonly key: string | undefined,
    private readonly counts: TrailVerifyCounts,
  ) {}

  row(s: ChainState, r: VerifyRow): void {
    this.counts.rows++;
    const database = r.database;
    const here = { commitPosition: BigInt(r.commit_position), seq: r.seq };
    if (s.expect && !s.expect.seen && compare(here, position(s.expect.head)) > 0) this.missingHead(database, s);
    if (r.hash === null) {
      if (!s.begun) {
        this.counts.unchained++;
        return;
      }
      this.resolvePending(database, s, null);
      this.fail('inserted', database, here, `the change at ${at(here)} has no chain hash although the chain began before it: inserted by hand, or written while capture ran without the chain`);
    }
    const row: Row = {
      ...here,
      hash: Buffer.from(r.hash, 'hex'),
      previous: r.previous_position === null || r.previous_seq === null ? null : { commitPosition: BigInt(r.previous_position), seq: r.previous_seq },
    };
    this.resolvePending(database, s, row);
    s.begun = true;
    this.counts.chained++;
    let column = 0;
    const content = chainContent(() => r[CONTENT_KEYS[column++]]);
    this.content = content;
    if (s.anchor && compare(row, s.anchor) <= 0) {
      // At or before where retention cut: a predecessor may be pruned, and then its hash is unknown.
      if (s.prev && same(row.previous, s.prev)) {
        if (!this.link(s.prev, content).equals(row.hash)) s.pending = { row, expected: s.prev, detail: this.editedDetail(row, s.prev, content) };
      } else {
        this.counts.unverifiable++;
      }
      this.advance(s, row);
      return;
    }
    const expected: Link | null = s.prev && (!s.anchor || compare(s.prev, s.anchor) > 0) ? s.prev : (s.anchor ?? null);
    const computed = this.link(expected, content);
    if (same(row.previous, expected)) {
      if (!computed.equals(row.hash)) s.pending = { row, expected, detail: this.editedDetail(row, expected, content) };
    } else {
      this.misplaced(database, s, row, expected, computed);
    }
    this.advance(s, row);
    if (s.expect && !s.expect.seen && compare(row, position(s.expect.head)) === 0) {
      s.expect.seen = true;
      if (row.hash.toString('hex') !== s.expect.head.hash.toLowerCase()) {
        this.fail('edited', database, row, `the change at ${at(row)} links correctly but its hash differs from the expected head: the chain was recomputed from here or earlier`);
      }
    }
  }

  /** After the last row of a database's chain. */
  end(database: string, s: ChainState): void {
    this.resolvePending(database, s, null);
    if (s.expect && !s.expect.seen) this.missingHead(database, s);
  }

  /** A row whose pointer does not name the row before it: which tampering that is. */
  private misplaced(database: string, s: ChainState, row: Row, expected: Link | null, computed: Buffer): never {
    if (computed.equals(row.hash)) {
      this.fail('edited', database, row, `the change at ${at(row)} links to ${expected ? at(expected) : 'the start of the chain'} as it should, but its predecessor pointer was changed to ${row.previous ? at(row.previous) : 'none'}`);
    }
    if (row.previous === null) {
      this.fail('inserted', database, row, `the change at ${at(row)} starts a new chain after ${expected ? at(expected) : 'the start'}: a forged row, or capture started the chain again after it was turned off`);
    }
    if (compare(row.previous, row) >= 0) {
      this.fail('reordered', database, row, `the change at ${at(row)} names ${at(row.previous)} as its predecessor, which comes after it: rows were moved`);
    }
    if (!expected || compare(row.previous, expected) > 0) {
      this.fail('deleted', database, row.previous, `the change at ${at(row)} follows ${at(row.previous)}, which is not in the trail${expected ? ` (the row before it is ${at(expected)})` : ' (nor any row before it: the start of the chain is gone)'}`);
    }
    if (s.prev && s.prevPrev && expected === s.prev && same(row.previous, s.prevPrev)) {
      // Two rows name the same predecessor: the one whose link holds is real.
      if (this.link(s.prevPrev, this.content).equals(row.hash)) {
        this.fail('inserted', database, s.prev, `the change at ${at(s.prev)} is no row's predecessor: ${at(row)} follows ${at(s.prevPrev)} directly`);
      }
      this.fail('inserted', database, row, `the change at ${at(row)} names ${at(s.prevPrev)} as its predecessor, which ${at(s.prev)} follows already, and its hash fits neither place: a forged row`);
    }
    this.fail('reordered', database, row, `the change at ${at(row)} names ${at(row.previous)} as its predecessor, but ${expected ? at(expected) : 'nothing'} comes right before it: rows were moved`);
  }

  /** A failed link: inserted when the next row names the failed row's own predecessor, else edited. */
  private resolvePending(database: string, s: ChainState, next: Row | null): void {
    const p = s.pending;
    if (!p) return;
    s.pending = undefined;
    if (next && same(next.previous, p.expected)) {
      this.fail('inserted', database, p.row, `the change at ${at(p.row)} is no row's predecessor: ${at(next)} follows ${p.expected ? at(p.expected) : 'the start of the chain'} directly`);
    }
    this.fail('edited', database, p.row, p.detail);
  }

  private editedDetail(row: Row, expected: Link | null, content: string): string {
    let detail = `the change at ${at(row)} does not match its hash: its content or hash was changed`;
    if (this.key !== undefined && linkHash(expected?.hash ?? null, content).equals(row.hash)) {
      detail += ` (its hash is an unkeyed SHA-256 link: recomputed without the key, or written by capture without chain.key)`;
    } else if (!expected) {
      detail += this.key === undefined ? ' (if the chain is keyed, pass its key)' : ' (is the key the one capture uses?)';
    }
    return detail;
  }

  private missingHead(database: string, s: ChainState): void {
    const head = s.expect!.head;
    s.expect!.seen = true;
    // Pruned past it: the anchor vouches for what came before.
    if (s.anchor && compare(position(head), s.anchor) <= 0) return;
    this.fail('deleted', database, position(head), `the expected head ${head.commitPosition}/${head.seq} is not in the trail: it was deleted${s.prev ? ` (the trail goes on after ${at(s.prev)})` : ''}, or the end of the trail was cut`);
  }

  private link(previous: Link | null, content: string): Buffer {
    return linkHash(previous?.hash ?? null, content, this.key);
  }

  private advance(s: ChainState, row: Row): void {
    s.prevPrev = s.prev;
    s.prev = row;
  }

  private fail(kind: TrailChainBreak['kind'], database: string, where: { commitPosition: bigint | string; seq: number }, detail: string): never {
    throw new Broken({ kind, database, position: { commitPosition: where.commitPosition.toString(), seq: where.seq }, detail });
  }
}

function position(head: TrailPosition): { commitPosition: bigint; seq: number } {
  return { commitPosition: BigInt(head.commitPosition), seq: head.seq };
}

function compare(a: { commitPosition: bigint; seq: number }, b: { commitPosition: bigint; seq: number }): number {
  if (a.commitPosition !== b.commitPosition) return a.commitPosition < b.commitPosition ? -1 : 1;
  return a.seq - b.seq;
}

/** Whether a pointer names `link` (null names the start of a chain). */
function same(pointer: { commitPosition: bigint; seq: number } | null, link: { commitPosition: bigint; seq: number } | null): boolean {
  if (pointer === null || link === null) return pointer === link;
  return pointer.commitPosition === link.commitPosition && pointer.seq === link.seq;
}

function at(p: { commitPosition: bigint | string; seq: number }): string {
  return `${p.commitPosition.toString()}/${p.seq}`;
}
