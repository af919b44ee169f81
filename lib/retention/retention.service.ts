import { Inject, Injectable, Logger, OnApplicationBootstrap, OnApplicationShutdown } from '@nestjs/common';
import { ModuleRef } from '@nestjs/core';
import { BEMI_RESOLVED_OPTIONS } from '../options/options.constants';
import { pruneChanges, type PruneResult, type RetentionLogger } from './prune-changes';
import { retentionConnection, type RetentionLocationOptions } from './retention-connection';
import type { BemiResolvedOptions } from '../options/bemi-options.interfaces';
import type { ResolvedRetentionOptions } from '../options/retention-options';

/** The module options this service reads. */
export type RetentionModuleOptions = RetentionLocationOptions & Pick<BemiResolvedOptions, 'retention' | 'trail'>;

/**
 * Runs the pruning job with the application when `BemiModule.forRoot({ retention })` is set: the
 * first run starts right after bootstrap, the next one `interval` after the previous one ended
 * (runs never overlap), and shutdown stops it between two batches. Its timer never keeps the
 * process alive. Without the `retention` option it does nothing.
 */
@Injectable()
export class BemiRetentionService implements OnApplicationBootstrap, OnApplicationShutdown {
  private readonly options?: ResolvedRetentionOptions;
  private timer?: NodeJS.Timeout;
  private running?: Promise<PruneResult>;
  private readonly abort = new AbortController();
  private last?: PruneResult;
  private readonly logger: RetentionLogger & { error(message: string): void };

  constructor(
    @Inject(BEMI_RESOLVED_OPTIONS) private readonly moduleOptions: RetentionModuleOptions,
    private readonly moduleRef: ModuleRef,
  ) {
    this.options = moduleOptions.retention;
    this.logger = new Logger('BemiRetention');
  }

  /** True when retention is configured for this application. */
  get enabled(): boolean {
    return this.options !== undefined;
  }

  /** The result of the last finished run, if any. */
  lastResult(): PruneResult | undefined {
    return this.last;
  }

  onApplicationBootstrap(): void {
    if (this.options) this.schedule(0);
  }

  async onApplicationShutdown(): Promise<void> {
    clearTimeout(this.timer);
    this.timer = undefined;
    this.abort.abort();
    await this.running?.catch(() => undefined);
  }

  /**
   * Prunes now (or counts, with `dryRun`) with the configured ages. While a run is going on,
   * returns that run instead of starting a second one.
   */
  prune(options: { dryRun?: boolean } = {}): Promise<PruneResult> {
    if (!this.options) return Promise.reject(new Error('BemiRetentionService.prune: retention is not configured (BemiModule.forRoot({ retention: { maxAge: "365d" } })).'));
    if (this.running) return this.running;
    const o = this.options;
    const run = (async () => {
      const connection = await retentionConnection(this.moduleOptions, this.moduleRef);
      return pruneChanges(connection, {
        schema: this.moduleOptions.trail.schema,
        table: this.moduleOptions.trail.table,
        maxAge: o.maxAgeMs ?? undefined,
        perTable: o.perTableMs,
        batchSize: o.batchSize,
        dryRun: options.dryRun,
        logger: this.logger,
        signal: this.abort.signal,
      });
    })();
    this.running = run;
    return run.then(
      (result) => {
        this.running = undefined;
        if (!result.dryRun) this.last = result;
        return result;
      },
      (error) => {
        this.running = undefined;
        throw error;
      },
    );
  }

  private schedule(delayMs: number): void {
    this.timer = setTimeout(() => void this.tick(), delayMs);
    this.timer.unref();
  }

  private async tick(): Promise<void> {
    this.timer = undefined;
    try {
      const result = await this.prune();
      if (!result.skipped) this.logger.log(`Pruned ${result.rows} changes in ${result.batches} batches and ${result.partitions.length} dropped partitions (${result.elapsedMs} ms).`);
    } catch (e) {
      // A failed run must not take the application down; the next run tries again.
      this.logger.error(`Pruning failed: ${(e as Error).message}`);
    }
    if (!this.abort.signal.aborted) this.schedule(this.options!.intervalMs);
  }
}
