import { Module } from '@nestjs/common';
import { APP_GUARD } from '@nestjs/core';
import { MikroOrmModule } from '@mikro-orm/nestjs';
import { TerminusModule } from '@nestjs/terminus';
import { BemiModule } from 'nestjs-bemi';
import { HeaderAuthGuard } from './auth/header-auth.guard';
import { HealthController } from './health/health.controller';
import { HistoryController } from './history/history.controller';
import { CleanupJob } from './jobs/cleanup.job';
import { JobsController } from './jobs/jobs.controller';
import { mikroOrmConfig } from './mikro-orm.config';
import { TodoController } from './todo/todo.controller';
import { TodoService } from './todo/todo.service';

@Module({
  imports: [
    MikroOrmModule.forRootAsync({
      useFactory: () => mikroOrmConfig(requiredEnv('DATABASE_URL')),
    }),
    BemiModule.forRoot({
      // Added to every request's context, over the defaults (endpoint, method, params, userId).
      // The Authorization header is masked ("[REDACTED]") before it leaves the process: see
      // redactContextKeys in the README. It is here to show that; don't log credentials on purpose.
      context: (req) => ({ ip: req.ip, authorization: req.headers?.authorization }),
      // Stream the WAL into the "changes" table from inside the app (same database).
      capture: { progressIntervalMs: 0 },
    }),
    TerminusModule.forRoot({ logger: false }),
  ],
  controllers: [TodoController, JobsController, HistoryController, HealthController],
  providers: [TodoService, CleanupJob, { provide: APP_GUARD, useClass: HeaderAuthGuard }],
})
export class AppModule {}

function requiredEnv(name: string): string {
  const value = process.env[name];
  if (!value) throw new Error(`${name} is not set; start the sample with "npm run sample".`);
  return value;
}
