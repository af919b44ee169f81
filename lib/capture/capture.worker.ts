import { Logger } from '@nestjs/common';
import { resolveCaptureOptions, type BemiCaptureOptions, type CaptureLogger, type ResolvedCaptureOptions } from '../options/capture-options';
import { CaptureAcknowledger } from './capture-acknowledger';
import { CaptureMonitor } from './capture-monitor';
import { CaptureCounters, type CaptureStatus, type SettledCaptureOptions } from './capture-shared';
import { formatLsn } from './lsn';
import { SessionSupervisor } from './session-supervisor';
import { StreamHandler } from './stream-handler';
import { WritePipeline } from './write-pipeline';

export { HEARTBEAT_MESSAGE_PREFIX } from './capture-shared';
export type { CaptureStatus } from './capture-shared';

/**
 * Streams the source's WAL (pgoutput, with `_bemi` messages) into the `changes` table.
 *
 * Exactly once: rows carry (commit LSN, index in transaction), written with ON CONFLICT DO NOTHING;
 * the slot is acknowledged only up to the end of the last transaction whose rows are committed in
 * the destination. A crash anywhere therefore re-delivers at most what was not acknowledged, and
 * the unique key drops what was already stored.
 *
 * This class only wires the parts together and answers for them: the session supervisor
 * (connections, reconnects), the stream handler, the write pipeline, the acknowledger (the one
 * place positions are confirmed) and the monitor (timers).
 */
export class BemiCaptureWorker {
  private readonly logger: CaptureLogger;
  private readonly counters = new CaptureCounters();
  private readonly acknowledger: CaptureAcknowledger;
  private readonly pipeline: WritePipeline;
  private readonly handler: StreamHandler;
  private readonly supervisor: SessionSupervisor;
  private readonly monitor: CaptureMonitor;
  private startedAt = Date.now();
  /** The options, with the slot name settled (in place, by the supervisor) at the first start when not given. */
  private readonly options: SettledCaptureOptions;

  constructor(options: ResolvedCaptureOptions) {
    this.logger = options.logger ?? new Logger('BemiCapture');
    this.options = { ...options, slotName: options.slotName ?? '' };
    const o = this.options;
    this.acknowledger = new CaptureAcknowledger((fromHandler) => this.handler.idle(fromHandler));
    this.pipeline = new WritePipeline(o, this.acknowledger, this.counters);
    this.handler = new StreamHandler(this.pipeline, this.acknowledger, () => this.supervisor.session);
    const parts = { handler: this.handler, pipeline: this.pipeline, acknowledger: this.acknowledger };
    this.supervisor = new SessionSupervisor(o, options.slotName !== undefined, this.logger, this.counters, parts);
    this.monitor = new CaptureMonitor(o, this.logger, this.counters, { ...parts, session: () => this.supervisor.session, status: () => this.status() });
  }

  /** A worker from options as a user writes them (validated here; `source` is required). */
  static fromOptions(options: BemiCaptureOptions): BemiCaptureWorker {
    return new BemiCaptureWorker(resolveCaptureOptions(options));
  }

  /**
   * Checks the source, prepares tables, publication and slot, and starts streaming. Rejects (with
   * a message that says what to fix) when the first connection or a check fails; after that,
   * lost connections are retried with backoff until `stop()`.
   */
  async start(): Promise<void> {
    if (this.supervisor.state !== 'stopped') throw new Error('The capture worker is already running.');
    this.startedAt = Date.now();
    await this.supervisor.start();
    this.monitor.start();
  }

  /** Stores and acknowledges every finished transaction received so far, then disconnects. */
  async stop(): Promise<void> {
    if (this.supervisor.state === 'stopped') return;
    this.monitor.stop();
    await this.supervisor.stop();
  }

  status(): CaptureStatus {
    const c = this.counters;
    const confirmed = this.acknowledger.position;
    return {
      state: this.supervisor.state,
      slotName: this.options.slotName,
      changesWritten: c.changesWritten,
      transactionsWritten: c.transactionsWritten,
      confirmedPosition: confirmed > 0n ? formatLsn(confirmed) : null,
      lastCommittedAt: c.lastCommittedAt,
      lagBytes: c.lagBytes,
      lagSeconds: this.handler.caughtUp() ? 0 : Math.max(0, (Date.now() - (c.lastCommittedAt?.getTime() ?? this.startedAt)) / 1000),
      reconnects: c.reconnects,
      lastError: c.lastError,
      maxBufferedRows: c.maxBufferedRows,
      maxQueuedMessages: c.maxQueuedMessages,
      invalidContexts: c.invalidContexts,
      untrustedContexts: c.untrustedContexts,
      unknownKeys: c.unknownKeys,
      unstorableChanges: c.unstorableChanges,
      lastUnstorable: c.lastUnstorable,
      newTables: this.supervisor.newTables,
    };
  }

  /** Measures the lag now: WAL bytes behind the server, and seconds behind the oldest unstored commit. */
  async lag(): Promise<{ bytes: number; seconds: number }> {
    await this.monitor.measureLag();
    const s = this.status();
    return { bytes: s.lagBytes ?? 0, seconds: s.lagSeconds };
  }
}
