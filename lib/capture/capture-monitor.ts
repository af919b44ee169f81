// The worker's timers: heartbeats, flushes of batches that waited long enough, progress lines and
// lag warnings, publication refreshes. They run beside the stream, not because of it, so they
// live here, apart from the handler and the session lifecycle; each one does nothing without a
// live session.
import type { CaptureLogger } from '../options/capture-options';
import type { CaptureAcknowledger } from './capture-acknowledger';
import { HEARTBEAT_MESSAGE_PREFIX, message, type CaptureCounters, type CaptureStatus, type Session, type SettledCaptureOptions } from './capture-shared';
import { parseLsn } from './lsn';
import { syncPublication, trackedTables } from './source-setup';
import type { StreamHandler } from './stream-handler';
import type { WritePipeline } from './write-pipeline';

export interface MonitoredParts {
  /** The session being streamed, if any. */
  session: () => Session | undefined;
  handler: StreamHandler;
  pipeline: WritePipeline;
  acknowledger: CaptureAcknowledger;
  /** The worker's status as reported, for the progress and lag lines. */
  status: () => CaptureStatus;
}

export class CaptureMonitor {
  private timers: NodeJS.Timeout[] = [];
  private progressMark = { at: Date.now(), changes: 0 };
  private heartbeatRefused = false;

  constructor(
    private readonly options: SettledCaptureOptions,
    private readonly logger: CaptureLogger,
    private readonly counters: CaptureCounters,
    private readonly parts: MonitoredParts,
  ) {}

  start(): void {
    const o = this.options;
    const every = (ms: number, fn: () => Promise<void>) => {
      if (ms <= 0) return;
      const t = setInterval(() => void fn().catch((e) => this.logger.warn(message(e))), ms);
      t.unref();
      this.timers.push(t);
    };
    every(o.heartbeatIntervalMs, () => this.heartbeat());
    every(Math.max(o.maxBatchDelayMs, 50), () => this.flushIfDue());
    // Lag warnings keep coming when progress lines are turned off: a stuck slot fills the disk.
    every(o.progressIntervalMs || 5000, () => this.progress(o.progressIntervalMs > 0));
    every(o.publicationRefreshMs, () => this.refreshPublication());
  }

  stop(): void {
    for (const t of this.timers) clearInterval(t);
    this.timers = [];
  }

  /** Measures the WAL bytes between the server's current position and the confirmed one. */
  async measureLag(): Promise<void> {
    const session = this.parts.session();
    if (!session || session.failed) return;
    const { rows } = await session.source.query<{ lsn: string }>(`SELECT pg_catalog.pg_current_wal_lsn()::text AS lsn`);
    const behind = parseLsn(rows[0].lsn) - this.parts.acknowledger.position;
    this.counters.lagBytes = behind > 0n ? Number(behind) : 0;
  }

  /** Finished transactions wait at most maxBatchDelayMs for company, even if the stream stalls. */
  private async flushIfDue(): Promise<void> {
    const session = this.parts.session();
    const { handler, pipeline } = this.parts;
    if (!session || session.failed || !pipeline.due) return;
    await handler.exclusive(() => pipeline.storeCompleted(session)).catch((e) => session.fail(e));
  }

  private async heartbeat(): Promise<void> {
    const session = this.parts.session();
    if (!session || session.failed) return;
    this.parts.acknowledger.repeat(session);
    if (this.options.heartbeatMessages && !this.heartbeatRefused && this.parts.handler.idle()) {
      // Something of ours to decode on an otherwise quiet database: its position can be confirmed.
      await session.source.query(`SELECT pg_catalog.pg_logical_emit_message(false, $1, now()::text)`, [HEARTBEAT_MESSAGE_PREFIX]).catch((e: { code?: string }) => {
        if (e.code !== '42501') throw e;
        // The trigger migration took pg_logical_emit_message from PUBLIC (docs/security.md).
        this.heartbeatRefused = true;
        this.logger.warn(
          `This worker's role may not call pg_logical_emit_message, so it sends no heartbeat messages: on a database with no tracked writes, its slot's position ` +
            `then moves only with other decoded traffic. To restore them: GRANT EXECUTE ON FUNCTION pg_logical_emit_message(boolean, text, text) TO <this role>; or set heartbeatMessages: false.`,
        );
      });
    }
  }

  private async progress(logProgress: boolean): Promise<void> {
    await this.measureLag();
    const now = Date.now();
    const s = this.parts.status();
    const changes = this.counters.changesWritten - this.progressMark.changes;
    const rate = changes / Math.max((now - this.progressMark.at) / 1000, 0.001);
    this.progressMark = { at: now, changes: this.counters.changesWritten };
    const lag = `lag ${s.lagBytes ?? '?'} bytes, ${s.lagSeconds.toFixed(1)} s`;
    if ((s.lagBytes ?? 0) > this.options.lagWarningBytes || s.lagSeconds > this.options.lagWarningSeconds) {
      this.logger.warn(`Capture is falling behind: ${lag} (${Math.round(rate)} changes/s). The slot retains WAL until capture catches up; see docs/health.md.`);
    } else if (changes > 0 && logProgress) {
      this.logger.log(`Captured ${changes} changes (${Math.round(rate)}/s), ${this.counters.changesWritten} in total; ${lag}.`);
    }
  }

  private async refreshPublication(): Promise<void> {
    const session = this.parts.session();
    if (!session || session.failed) return;
    await syncPublication(session.source, this.options.publicationName, await trackedTables(session.source, this.options));
  }
}
