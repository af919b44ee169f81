import type { CaptureStatus } from './capture.worker';
import { newestChangeSql, slotMetricsSql } from './capture-metrics.sql';

/** Capture figures for health checks and custom metrics (`BemiCaptureService.metrics()`). */
export interface BemiCaptureMetrics {
  /** State of the worker inside this application; null when capture runs elsewhere (the CLI). */
  workerState: CaptureStatus['state'] | null;
  slot: {
    name: string;
    exists: boolean;
    /** A walsender is streaming from it (some worker is connected). */
    active: boolean | null;
    /** `reserved`, `extended`, `unreserved` or `lost` (pg_replication_slots.wal_status). */
    walStatus: string | null;
    /** WAL the slot holds back: bytes between the server's position and what capture confirmed. */
    lagBytes: number | null;
    /** Bytes left before `max_slot_wal_keep_size` invalidates the slot; null when unlimited. */
    safeWalSizeBytes: number | null;
  };
  /** Seconds the in-process worker is behind the oldest unstored commit; null without one. */
  lagSeconds: number | null;
  /** Commit time of the newest stored change; null when `changes` is empty or unreadable. */
  newestChangeAt: Date | null;
  newestChangeAgeSeconds: number | null;
  /** Rows written by the in-process worker since it started; null without one. */
  changesWritten: number | null;
  /**
   * What the in-process worker stored with a marker instead of as received (null without one):
   * context messages replaced by the invalid-context marker or not believed, changes stored without their key,
   * changes the destination refused (stored as text; the last one's position and reason).
   */
  stored: Pick<CaptureStatus, StoredFigure> | null;
  measuredAt: Date;
}

type StoredFigure = 'invalidContexts' | 'untrustedContexts' | 'unknownKeys' | 'unstorableChanges' | 'lastUnstorable';

/** Runs one query and returns its rows (MikroORM's connection or a pg client fit). */
export type RowsQuery = (sql: string) => Promise<Array<Record<string, unknown>>>;

export interface MetricsTarget {
  slotName: string;
  schema: string;
  table: string;
}

/**
 * Reads the capture figures, plus the in-process worker's status when there is one: the slot from
 * the source database (`query`), the newest change from where the trail lives (`trail`, default
 * the same database: `capture.destination` when it is elsewhere).
 */
export async function readCaptureMetrics(query: RowsQuery, target: MetricsTarget, worker: CaptureStatus | null, trail: RowsQuery = query): Promise<BemiCaptureMetrics> {
  const now = new Date();
  const [slot] = await query(slotMetricsSql(target.slotName));
  let newest: Date | null = null;
  try {
    const [row] = await trail(newestChangeSql(target.schema, target.table));
    newest = row ? new Date(row.committed_at as string | Date) : null;
  } catch {
    newest = null; // no changes table (yet), or it lives in another database
  }
  const num = (v: unknown) => (v === null || v === undefined ? null : Number(v));
  return {
    workerState: worker?.state ?? null,
    slot: {
      name: target.slotName,
      exists: slot !== undefined,
      active: slot ? Boolean(slot.active) : null,
      walStatus: (slot?.wal_status as string | null | undefined) ?? null,
      lagBytes: num(slot?.lag_bytes),
      safeWalSizeBytes: num(slot?.safe_wal_size),
    },
    lagSeconds: worker ? worker.lagSeconds : null,
    newestChangeAt: newest,
    newestChangeAgeSeconds: newest ? Math.max(0, (now.getTime() - newest.getTime()) / 1000) : null,
    changesWritten: worker ? worker.changesWritten : null,
    stored: worker ? { invalidContexts: worker.invalidContexts, untrustedContexts: worker.untrustedContexts, unknownKeys: worker.unknownKeys, unstorableChanges: worker.unstorableChanges, lastUnstorable: worker.lastUnstorable } : null,
    measuredAt: now,
  };
}
