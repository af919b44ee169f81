/** Limits past which `BemiHealthIndicator` reports `down`. */
export interface BemiHealthThresholds {
  /** Default 64 MiB (`DEFAULT_LAG_LIMIT_BYTES`, also capture's `lagWarningBytes` default). */
  maxLagBytes?: number;
  /** Default 60 (`DEFAULT_LAG_LIMIT_SECONDS`, also capture's `lagWarningSeconds` default). */
  maxLagSeconds?: number;
  /** Off by default: an idle application legitimately has an old newest change. */
  maxNewestChangeAgeSeconds?: number;
  /** Slot to look at when capture runs outside this application. Default: `capture.slotName`, else the worker's, else the database's default slot. */
  slotName?: string;
}

/** Terminus' result shape: `{ [key]: { status: 'up' | 'down', ...details } }`. */
export type BemiHealthResult = Record<string, { status: 'up' | 'down'; [detail: string]: unknown }>;
