import {
  Body,
  CanActivate,
  Controller,
  Delete,
  ExecutionContext,
  Get,
  HttpCode,
  Injectable,
  Module,
  NotFoundException,
  Param,
  ParseIntPipe,
  Post,
  Put,
  type DynamicModule,
  type INestApplication,
} from '@nestjs/common';
import { APP_GUARD } from '@nestjs/core';
import { FastifyAdapter, type NestFastifyApplication } from '@nestjs/platform-fastify';
import { Test } from '@nestjs/testing';
import { MikroORM } from '@mikro-orm/core';
import { EntityManager, PostgreSqlDriver } from '@mikro-orm/postgresql';
import { MikroOrmModule } from '@mikro-orm/nestjs';
import { BemiContext, BemiModule, BemiService, bemiMigrationSql } from '../../lib';
import { Todo, TODO_DDL, TodoSchema } from './todo';

/** Auth stub: `x-user-id: 42` acts as user 42 (sets `req.user`, as Passport would). */
@Injectable()
export class HeaderAuthGuard implements CanActivate {
  canActivate(ctx: ExecutionContext): boolean {
    if (ctx.getType() !== 'http') return true;
    const req = ctx.switchToHttp().getRequest();
    const id = req.headers?.['x-user-id'];
    if (id !== undefined) req.user = { id: Number(id) };
    return true;
  }
}

/** Context added before the interceptor runs: a guard that records the tenant header. */
@Injectable()
export class TenantGuard implements CanActivate {
  constructor(private readonly bemi: BemiService) {}

  canActivate(ctx: ExecutionContext): boolean {
    const tenant = ctx.getType() === 'http' ? ctx.switchToHttp().getRequest().headers?.['x-tenant'] : undefined;
    if (tenant) this.bemi.set({ tenant, layer: 'guard' });
    return true;
  }
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

@BemiContext({ area: 'todos', layer: 'class' })
@Controller('todo')
export class TodoController {
  constructor(
    private readonly em: EntityManager,
    private readonly bemi: BemiService,
  ) {}

  @Post()
  async create(@Body() body: { task: string; delayMs?: number }) {
    // A pause before the write interleaves concurrent requests.
    if (body.delayMs) await sleep(body.delayMs);
    const todo = this.em.create(Todo, { task: body.task });
    await this.em.flush();
    return todo;
  }

  @Put(':id/complete')
  @BemiContext({ action: 'todo.complete', layer: 'method' })
  @BemiContext((req) => ({ todoId: Number(req.params.id) }))
  async complete(@Param('id', ParseIntPipe) id: number) {
    this.bemi.set({ layer: 'set', completedVia: 'api' });
    const todo = await this.em.findOne(Todo, id);
    if (!todo) throw new NotFoundException();
    todo.isCompleted = true;
    await this.em.flush();
    return todo;
  }

  @Delete(':id')
  @HttpCode(204)
  async remove(@Param('id', ParseIntPipe) id: number) {
    await this.em.nativeDelete(Todo, { id });
  }

  @Get()
  list() {
    return this.em.find(Todo, {}, { orderBy: { id: 'asc' } });
  }

  @Get('context')
  context() {
    return this.bemi.get();
  }
}

export interface TodoAppOptions {
  dbUrl: string;
  bemi?: Parameters<typeof BemiModule.forRoot>[0];
  /** Use this instead of `BemiModule.forRoot(bemi)` (e.g. a forRootAsync module). */
  bemiModule?: DynamicModule;
  platform?: 'express' | 'fastify';
  /** Extra MikroORM options (e.g. a logger or the user's own onQuery). */
  orm?: Record<string, unknown>;
  imports?: Array<DynamicModule | (new (...args: any[]) => unknown)>;
}

/** Boots the test Todo API on real PostgreSQL; the database must have `todo` and the trigger SQL. */
export async function createTodoApp(options: TodoAppOptions): Promise<INestApplication> {
  @Module({
    imports: [
      MikroOrmModule.forRoot({
        driver: PostgreSqlDriver,
        clientUrl: options.dbUrl,
        entities: [TodoSchema],
        pool: { min: 0, max: 10 },
        ...options.orm,
      }),
      options.bemiModule ?? BemiModule.forRoot(options.bemi),
      ...(options.imports ?? []),
    ],
    controllers: [TodoController],
    providers: [
      { provide: APP_GUARD, useClass: HeaderAuthGuard },
      { provide: APP_GUARD, useClass: TenantGuard },
    ],
  })
  class TodoAppModule {}

  const moduleRef = await Test.createTestingModule({ imports: [TodoAppModule] }).compile();
  const app =
    options.platform === 'fastify'
      ? moduleRef.createNestApplication<NestFastifyApplication>(new FastifyAdapter(), { logger: false })
      : moduleRef.createNestApplication({ logger: false });
  await app.init();
  if (options.platform === 'fastify') await (app as NestFastifyApplication).getHttpAdapter().getInstance().ready();
  return app;
}

/** Creates the `todo` table and installs the Bemi trigger SQL. */
export async function prepareTodoDatabase(query: (sql: string) => Promise<unknown>): Promise<void> {
  await query(TODO_DDL);
  await query(bemiMigrationSql().up);
}

export function ormOf(app: INestApplication): MikroORM {
  return app.get(MikroORM);
}
