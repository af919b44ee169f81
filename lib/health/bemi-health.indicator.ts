import { Injectable } from '@nestjs/common';
import { BemiCaptureService } from '../capture/capture.service';
import type { BemiCaptureMetrics } from '../capture/capture-metrics';
import { DEFAULT_LAG_LIMIT_BYTES, DEFAULT_LAG_LIMIT_SECONDS } from '../options/defaults';
import type { BemiHealthResult, BemiHealthThresholds } from './health.interfaces';

/**
 * A health indicator for `@nestjs/terminus` (11+), without importing it: it returns terminus'
 * result shape, and terminus counts a `down` result as a failed check.
 *
 * ```ts
 * @Get('health') @HealthCheck()
 * check() { return this.health.check([() => this.bemi.isHealthy('bemi', { maxLagBytes: 256 * 1024 ** 2 })]); }
 * ```
 */
@Injectable()
export class BemiHealthIndicator {
  constructor(private readonly capture: BemiCaptureService) {}

  /**
   * `up` when capture keeps up: the in-process worker (if any) is streaming, the slot exists, is
   * active and not lost, and the lag is within the thresholds. Details carry every figure, and
   * `problems` says what is wrong. A failure to measure is `down` too, with its reason.
   */
  async isHealthy(key = 'bemi', thresholds: BemiHealthThresholds = {}): Promise<BemiHealthResult> {
    let metrics: BemiCaptureMetrics;
    try {
      metrics = await this.capture.metrics({ slotName: thresholds.slotName });
    } catch (error) {
      return { [key]: { status: 'down', problems: [`could not measure capture: ${(error as Error)?.message ?? String(error)}`] } };
    }
    const problems = evaluate(metrics, thresholds);
    return {
      [key]: {
        status: problems.length ? 'down' : 'up',
        ...(problems.length ? { problems } : {}),
        workerState: metrics.workerState,
        slot: metrics.slot,
        lagSeconds: metrics.lagSeconds,
        newestChangeAt: metrics.newestChangeAt?.toISOString() ?? null,
        newestChangeAgeSeconds: metrics.newestChangeAgeSeconds,
        // Reported, never `down`: capture goes on, but these want a look (docs/health.md).
        stored: metrics.stored,
      },
    };
  }
}

/** What is wrong with the figures, in words an operator can act on; empty when healthy. */
export function evaluate(m: BemiCaptureMetrics, t: BemiHealthThresholds): string[] {
  const problems: string[] = [];
  const maxBytes = t.maxLagBytes ?? DEFAULT_LAG_LIMIT_BYTES;
  const maxSeconds = t.maxLagSeconds ?? DEFAULT_LAG_LIMIT_SECONDS;
  if (m.workerState !== null && m.workerState !== 'streaming') problems.push(`the capture worker is ${m.workerState}`);
  if (!m.slot.exists) {
    problems.push(`replication slot "${m.slot.name}" does not exist (capture never started, or the slot was dropped)`);
    return problems;
  }
  if (m.slot.walStatus === 'lost') problems.push(`replication slot "${m.slot.name}" is lost (max_slot_wal_keep_size exceeded): changes were lost, see docs/health.md`);
  if (m.slot.walStatus === 'unreserved') problems.push(`replication slot "${m.slot.name}" is past max_wal_size and will be invalidated at the next checkpoint unless capture catches up`);
  if (m.workerState === null && m.slot.active === false) problems.push(`no capture worker is connected to slot "${m.slot.name}"`);
  if (m.slot.lagBytes !== null && m.slot.lagBytes > maxBytes) problems.push(`the slot holds ${m.slot.lagBytes} bytes of WAL (limit ${maxBytes})`);
  if (m.lagSeconds !== null && m.lagSeconds > maxSeconds) problems.push(`capture is ${m.lagSeconds.toFixed(1)} s behind (limit ${maxSeconds} s)`);
  if (t.maxNewestChangeAgeSeconds !== undefined && m.newestChangeAgeSeconds !== null && m.newestChangeAgeSeconds > t.maxNewestChangeAgeSeconds) {
    problems.push(`the newest change is ${Math.round(m.newestChangeAgeSeconds)} s old (limit ${t.maxNewestChangeAgeSeconds} s)`);
  }
  return problems;
}
