/** A change's place in stream order: its transaction's commit LSN (decimal text) and its index in it. */
export interface TrailPosition {
  commitPosition: string;
  seq: number;
}

/** The last link of one source database's chain: keep it outside the database to detect a cut tail later (`expectHead`). */
export interface TrailChainHead extends TrailPosition {
  database: string;
  /** The link's hash, hex. */
  hash: string;
}

/** Where retention cut the chain: the newest change it deleted. The chain verifies from here on. */
export interface TrailChainAnchor extends TrailChainHead {
  committedAt: string;
}

/**
 * What broke the chain, as far as the links tell: `edited` (a row's content, hash or pointer no
 * longer matches its link), `deleted` (a row's link names a predecessor that is not there),
 * `inserted` (a row that is no row's predecessor), `reordered` (a row names a predecessor that
 * does not come right before it).
 */
export type TrailBreakKind = 'edited' | 'deleted' | 'inserted' | 'reordered';

export interface TrailChainBreak {
  kind: TrailBreakKind;
  /** Source database of the broken chain (the `database` column). */
  database: string;
  /** The row at fault; for `deleted`, the place of the missing row. */
  position: TrailPosition;
  /** One sentence for a person. */
  detail: string;
}

export interface TrailVerifyProgress {
  /** Rows read so far. */
  rows: number;
  /** PostgreSQL's estimate of the trail's rows (pg_class.reltuples), for a progress bar; 0 when unknown. */
  estimatedRows: number;
  /** The last row read. */
  position: TrailPosition | null;
}

export interface TrailVerifyOptions {
  /** The chain's HMAC key (capture's `chain.key`). Default: the module's capture option, if any. */
  key?: string;
  /**
   * Heads kept from an earlier verify (or your own records): each must still be in the trail with
   * the same hash. Without one, verify cannot see rows deleted from the end of the trail.
   */
  expectHead?: TrailChainHead | TrailChainHead[];
  /** Rows read per query (keyset pages). Default 5000. */
  pageSize?: number;
  /** Called after every page. */
  onProgress?: (progress: TrailVerifyProgress) => void;
}

/** Counts every result carries. */
export interface TrailVerifyCounts {
  /** Rows read. */
  rows: number;
  /** Rows with a link. */
  chained: number;
  /** Rows written before the chain began (the chain was off): not covered. */
  unchained: number;
  /** Rows at or before a retention anchor whose predecessor was pruned: their links cannot be checked. */
  unverifiable: number;
}

export type TrailVerifyResult =
  | (TrailVerifyCounts & { ok: true; status: 'intact'; heads: TrailChainHead[]; anchors: TrailChainAnchor[] })
  | (TrailVerifyCounts & { ok: false; status: 'broken'; broken: TrailChainBreak; anchors: TrailChainAnchor[] })
  | (TrailVerifyCounts & { ok: false; status: 'not-enabled'; detail: string });
