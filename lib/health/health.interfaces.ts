import type { CaptureStatus } from '../capture/capture.worker';

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
  measuredAt: Date;
}

/** Limits past which `BemiHealthIndicator` reports `down`. */
export interface BemiHealthThresholds {
  /** Default 64 MiB (the capture's `lagWarningBytes` default). */
  maxLagBytes?: number;
  /** Default 60 (the capture's `lagWarningSeconds` default). */
  maxLagSeconds?: number;
  /** Off by default: an idle application legitimately has an old newest change. */
  maxNewestChangeAgeSeconds?: number;
  /** Slot to look at when capture runs outside this application. Default: `capture.slotName`, else the worker's, else the database's default slot. */
  slotName?: string;
}

/** Terminus' result shape: `{ [key]: { status: 'up' | 'down', ...details } }`. */
export type BemiHealthResult = Record<string, { status: 'up' | 'down'; [detail: string]: unknown }>;
