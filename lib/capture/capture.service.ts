import { Inject, Injectable, Logger, OnApplicationBootstrap, OnApplicationShutdown } from '@nestjs/common';
import { ModuleRef } from '@nestjs/core';
import { Client, type ClientConfig } from 'pg';
import { asOptionsError } from '../options/bemi-options.validator';
import { BEMI_RESOLVED_OPTIONS } from '../options/options.constants';
import type { BemiResolvedOptions } from '../options/bemi-options.interfaces';
import { findMikroOrm, ormClientConfig } from '../orm/find-mikro-orm';
import { readCaptureMetrics, type BemiCaptureMetrics, type RowsQuery } from './capture-metrics';
import { ruleEntitiesOf } from '../rules/entity-rules';
import { compileRules } from '../rules/rules-compiler';
import type { CompiledRules } from '../rules/rules.interfaces';
import { BemiCaptureOptionsError, settleCaptureConnections } from '../options/capture-options';
import { chooseDefaultSlot } from './source-setup';
import { BemiCaptureWorker, type CaptureStatus } from './capture.worker';

/**
 * Runs the change-capture worker with the application when `BemiModule.forRoot({ capture })` is
 * set: starts once the application has bootstrapped, and on shutdown (`app.close()`, or a signal
 * with `app.enableShutdownHooks()`) stores and acknowledges what it received before closing.
 * Without the `capture` option it does nothing.
 */
@Injectable()
export class BemiCaptureService implements OnApplicationBootstrap, OnApplicationShutdown {
  private worker?: BemiCaptureWorker;

  constructor(
    @Inject(BEMI_RESOLVED_OPTIONS) private readonly options: BemiResolvedOptions,
    private readonly moduleRef: ModuleRef,
  ) {}

  /** True when capture is configured for this application. */
  get enabled(): boolean {
    return this.options.capture !== undefined;
  }

  async onApplicationBootstrap(): Promise<void> {
    const capture = this.options.capture;
    if (!capture) return;
    const source = capture.source === undefined ? await this.ormConnection() : undefined;
    const rules = capture.rules ?? this.compiledRules();
    // The options were checked once at startup (validateBemiOptions); here only the connections are settled.
    this.worker = new BemiCaptureWorker(settleCaptureConnections({ ...capture, logger: capture.logger ?? new Logger('BemiCapture'), ...(rules ? { rules } : {}) }, source));
    await this.worker.start();
  }

  async onApplicationShutdown(): Promise<void> {
    await this.worker?.stop();
  }

  /** The worker's counters, position and lag; null when capture is not configured or not started. */
  status(): CaptureStatus | null {
    return this.worker?.status() ?? null;
  }

  /** Measures the lag now (bytes of WAL behind the server, seconds behind the last commit). */
  async lag(): Promise<{ bytes: number; seconds: number } | null> {
    return this.worker ? this.worker.lag() : null;
  }

  /**
   * Figures for health checks and metrics: the slot's state and retained WAL (read from the
   * source database, so they are right also when capture runs in another process), the in-process
   * worker's state and lag, and the newest stored change (read where the trail lives:
   * `capture.destination` when set). `slotName` defaults to the one the worker uses.
   */
  async metrics(options: { slotName?: string } = {}): Promise<BemiCaptureMetrics> {
    const capture = this.options.capture;
    const orm = findMikroOrm(this.moduleRef);
    const opened: Client[] = [];
    const viaClient = async (config: string | ClientConfig): Promise<RowsQuery> => {
      const client = new Client(typeof config === 'string' ? { connectionString: config } : config);
      opened.push(client);
      await client.connect();
      return async (sql) => (await client.query(sql)).rows;
    };
    try {
      let source: RowsQuery;
      if (capture?.source) source = await viaClient(capture.source);
      else if (orm) {
        const connection = orm.em.getConnection();
        source = (sql) => connection.execute(sql, [], 'all');
      } else throw new Error('no database to measure: the application has no MikroORM instance and capture.source is not set');
      const trail = capture?.destination ? await viaClient(capture.destination) : source;
      const slotName = options.slotName ?? capture?.slotName ?? this.startedSlot() ?? (await chooseDefaultSlot(source));
      return await readCaptureMetrics(source, { slotName, schema: this.options.trail.schema, table: this.options.trail.table }, this.status(), trail);
    } finally {
      await Promise.all(opened.map((c) => c.end().catch(() => undefined)));
    }
  }

  /** The slot of the running worker (derived from the database when not configured). */
  private startedSlot(): string | undefined {
    const name = this.worker?.status().slotName;
    return name ? name : undefined;
  }

  /** `rules` merged with the decorators of the application's entities; undefined when none apply. */
  private compiledRules(): CompiledRules | undefined {
    const orm = findMikroOrm(this.moduleRef);
    const compiled = asOptionsError(() => compileRules(this.options.rules, orm ? ruleEntitiesOf(orm) : []));
    return compiled.tables.size > 0 || compiled.skipIgnoredOnlyUpdates ? compiled : undefined;
  }

  /** Without `capture.source`, the worker connects like the application's MikroORM does. */
  private async ormConnection(): Promise<ClientConfig> {
    const orm = findMikroOrm(this.moduleRef);
    if (!orm) {
      throw new BemiCaptureOptionsError('source', 'is required when the application has no MikroORM instance (give a postgres:// URL)');
    }
    return ormClientConfig(orm);
  }
}
