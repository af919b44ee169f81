import { Injectable, Logger, OnApplicationBootstrap, OnApplicationShutdown } from '@nestjs/common';
import { MikroORM } from '@mikro-orm/core';
import { BemiService } from 'nestjs-bemi';
import { Todo } from '../todo/todo.entity';

/**
 * A background job (hourly, and on demand through POST /jobs/cleanup): outside a request it names
 * itself with `bemi.run()`, so its deletes are recorded with `{ job: 'cleanup-completed' }`.
 */
@Injectable()
export class CleanupJob implements OnApplicationBootstrap, OnApplicationShutdown {
  private readonly logger = new Logger(CleanupJob.name);
  private timer?: NodeJS.Timeout;

  constructor(
    private readonly orm: MikroORM,
    private readonly bemi: BemiService,
  ) {}

  onApplicationBootstrap(): void {
    const everyMs = Number(process.env.CLEANUP_EVERY_MS ?? 60 * 60_000);
    this.timer = setInterval(() => void this.run().catch((e) => this.logger.error(e)), everyMs);
    this.timer.unref();
  }

  onApplicationShutdown(): void {
    clearInterval(this.timer);
  }

  /** Deletes every completed todo; returns how many went. */
  run(): Promise<number> {
    return this.bemi.run({ job: 'cleanup-completed' }, () => this.orm.em.fork().nativeDelete(Todo, { isCompleted: true }));
  }
}
