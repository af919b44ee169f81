import type { CaptureStatus } from '../capture/capture.worker';
import type { BemiCaptureMetrics } from './health.interfaces';
import { newestChangeSql, slotMetricsSql } from './health.sql';

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
    measuredAt: now,
  };
}
