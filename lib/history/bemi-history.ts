import { Inject, Injectable, Optional } from '@nestjs/common';
import { MikroORM } from '@mikro-orm/core';
import { BEMI_RESOLVED_OPTIONS } from '../options/options.constants';
import { resolveTrailLocation } from '../trail/trail-location';
import type { BemiResolvedOptions } from '../options/bemi-options.interfaces';
import { BemiContextStore } from '../context/bemi-context.store';
import type { BemiChange } from './bemi-change.entity';
import type {
  BemiHistoryOptions,
  ChangesQuery,
  HistoryChange,
  HistoryDiff,
  HistoryInstant,
  HistoryTarget,
  RevertOptions,
  TableAtOptions,
} from './history.interfaces';
import { HistoryReader, type ChangeRef } from './history-reader';
import { PreparedReader } from './prepared-reader';
import { Reverter } from './revert';
import { TimeTravel } from './time-travel';
import { TrailAccess } from './trail-access';
import { SqlParams, ident } from './sql-params';
import { verifyTrail } from './trail-verify';
import type { TrailVerifyOptions, TrailVerifyResult } from './trail-verify.interfaces';
import type { TrailLocation } from '../trail/trail-location';

/**
 * Reads the audit trail and reconstructs records or whole tables as of any moment since capture
 * started; reverts changes through the application's EntityManager so reverts are audited too.
 *
 * Nest: add `BemiHistory` to BemiModule's providers/exports. Elsewhere: `BemiHistory.create(orm)`.
 */
@Injectable()
export class BemiHistory {
  // The public API only; the work is done by the parts (history-reader, time-travel, revert).
  private readonly reader: HistoryReader;
  private readonly timeTravel: TimeTravel;
  private readonly reverter: Reverter;
  private readonly trail: TrailAccess;
  private readonly location: TrailLocation;
  /** The capture's chain key: verify's default. */
  private readonly chainKey?: string;

  constructor(
    // Optional so that an app without a default MikroORM still boots; methods then say what to do.
    @Optional() @Inject(MikroORM) maybeOrm: MikroORM | undefined,
    @Optional() @Inject(BEMI_RESOLVED_OPTIONS) moduleOptions?: (Pick<BemiResolvedOptions, 'trail' | 'rules'> & Partial<Pick<BemiResolvedOptions, 'capture'>>) | null,
    @Optional() store?: BemiContextStore,
  ) {
    // The trail is where the capture worker writes it, unless told otherwise (resolved at startup).
    this.location = moduleOptions?.trail ?? resolveTrailLocation(undefined);
    const trail = new TrailAccess(maybeOrm, this.location);
    this.trail = trail;
    this.chainKey = moduleOptions?.capture?.chain?.key;
    this.reader = new HistoryReader(trail);
    this.timeTravel = new TimeTravel(trail, maybeOrm ? new PreparedReader(maybeOrm) : undefined);
    // The capture's HMAC key lets reverts check HMAC-redacted columns against the live row.
    this.reverter = new Reverter(trail, this.reader, store ?? new BemiContextStore(), moduleOptions?.rules?.hmacKey);
  }

  /** For use without Nest: `BemiHistory.create(orm, { schema: 'audit' })`. */
  static create(orm: MikroORM, options: BemiHistoryOptions = {}): BemiHistory {
    const { store, hmacKey, ...location } = options;
    return new BemiHistory(orm, { trail: resolveTrailLocation(location), rules: hmacKey === undefined ? undefined : { hmacKey } }, store);
  }

  // ---- reading the trail ------------------------------------------------------------------

  /**
   * Changes in commit order (oldest first unless `order: 'desc'`), filtered, one page at a time.
   * `changes(Todo, { primaryKey: 26 })` is a record's trail; `changes({ context: { userId: 1 } })`
   * everything one actor did. Continue with `{ after: page[page.length - 1].cursor }`.
   */
  async changes<T extends object>(target: HistoryTarget<T>, query?: ChangesQuery): Promise<HistoryChange<T>[]>;
  async changes(query?: ChangesQuery): Promise<HistoryChange[]>;
  async changes(targetOrQuery?: HistoryTarget | ChangesQuery, maybeQuery?: ChangesQuery): Promise<HistoryChange<any>[]> {
    return this.reader.changes(targetOrQuery, maybeQuery);
  }

  /** One change by id. */
  async change(id: string): Promise<HistoryChange> {
    return this.reader.change(id);
  }

  /** All changes committed in the same transaction as `change`, in order. */
  async transaction(change: ChangeRef): Promise<HistoryChange[]> {
    return this.reader.transaction(change);
  }

  /** `{ field: [before, after] }` for the fields the change modified (property names for mapped tables). */
  diff(change: HistoryChange<any> | BemiChange): HistoryDiff {
    return this.reader.diff(change);
  }

  // ---- time travel ------------------------------------------------------------------------

  /**
   * The record as it was at `at` (inclusive): an entity instance that no EntityManager manages
   * (a plain row for unmapped tables), or null if it did not exist then.
   */
  async at<T extends object>(target: HistoryTarget<T>, primaryKey: unknown, at: HistoryInstant): Promise<T | null> {
    return this.timeTravel.at(target, primaryKey, at);
  }

  /**
   * Every row of the table as of `at`: the trail's state for rows that have changes, the live
   * row for rows that never changed. Ordered by primary key.
   */
  async tableAt<T extends object>(target: HistoryTarget<T>, at: HistoryInstant, options: TableAtOptions<T> = {}): Promise<T[]> {
    return this.timeTravel.tableAt(target, at, options);
  }

  // ---- reverting --------------------------------------------------------------------------

  /**
   * Applies the inverse of one change through the EntityManager, in a transaction, with
   * `{ revertOf: <change id> }` merged into the current context. Refuses (BemiRevertConflictError)
   * when the row is no longer what the change left behind.
   */
  async revert(change: ChangeRef, options: RevertOptions = {}): Promise<void> {
    return this.reverter.revert(change, options);
  }

  /**
   * Reverts every change of `change`'s transaction, all or nothing: newest first, except where
   * foreign keys ask for another order (parents re-inserted before children, children deleted first).
   */
  async revertTransaction(change: ChangeRef, options: RevertOptions = {}): Promise<void> {
    return this.reverter.revertTransaction(change, options);
  }

  // ---- tamper evidence --------------------------------------------------------------------

  /**
   * Checks the trail's hash chain (capture's `chain` option), reading it in stream order a page at
   * a time: `{ ok: true, heads }` when every link holds, else the first broken link (`edited`,
   * `deleted`, `inserted`, `reordered`), or `status: 'not-enabled'`. Keep `heads` elsewhere and
   * pass them back as `expectHead` to detect rows cut from the end. See docs/verify.md.
   */
  async verify(options: TrailVerifyOptions = {}): Promise<TrailVerifyResult> {
    const trail = this.trail;
    return verifyTrail(
      {
        ident,
        run: <R>(build: (p: (value: unknown) => string) => string) => {
          const params = new SqlParams();
          return trail.run<R>(params.build(build((v) => params.p(v))), 'verify');
        },
      },
      this.location.schema,
      this.location.table,
      { ...options, key: options.key ?? this.chainKey },
    );
  }
}
