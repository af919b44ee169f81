import { Controller, Get, Injectable, Module, type INestApplication } from '@nestjs/common';
import { Test } from '@nestjs/testing';
import { MikroORM } from '@mikro-orm/core';
import { ClsModule, ClsService } from 'nestjs-cls';
import request from 'supertest';
import { BemiModule, BemiService } from '../lib';
import { BEMI_CONTEXT_CLS_KEY } from '../lib/context/context.constants';
import { createTestDatabase, type TestDatabase } from './support/database';
import { createTodoApp, prepareTodoDatabase } from './support/todo-app';

@Controller('cls')
class ClsProbeController {
  constructor(
    private readonly cls: ClsService,
    private readonly bemi: BemiService,
  ) {}

  @Get()
  probe() {
    return { fromCls: this.cls.get(BEMI_CONTEXT_CLS_KEY), fromBemi: this.bemi.get(), appKey: this.cls.get('app-key') };
  }
}

@Injectable()
class TenantConfig {
  tenant = 'acme';
}

@Module({ providers: [TenantConfig], exports: [TenantConfig] })
class TenantConfigModule {}

describe('BemiModule', () => {
  let db: TestDatabase;

  beforeAll(async () => {
    db = await createTestDatabase('module');
    await prepareTodoDatabase((sql) => db.query(sql));
  });

  afterAll(() => db?.drop());

  it('forRootAsync: options come from a factory with injected providers', async () => {
    const app = await createTodoApp({
      dbUrl: db.url,
      bemiModule: BemiModule.forRootAsync({
        imports: [TenantConfigModule],
        inject: [TenantConfig],
        useFactory: (config: TenantConfig) => ({ context: () => ({ tenant: config.tenant }) }),
      }),
    });
    try {
      await app.listen(0, '127.0.0.1');
      const url = (await app.getUrl()).replace('[::1]', '127.0.0.1');
      const res = await request(url).get('/todo/context').expect(200);
      expect(res.body).toMatchObject({ tenant: 'acme', endpoint: '/todo/context' });
    } finally {
      await app.close();
    }
  });

  it('fails at startup with a message naming the option and the fix', async () => {
    await expect(createTodoApp({ dbUrl: db.url, bemi: { maxContextSize: 0 } })).rejects.toThrow(
      'BemiModule option "maxContextSize" must be a whole number of bytes of at least 2, got number. Remove it to use the default (1000000).',
    );
  });

  it('fails at startup when there is no MikroORM to attach to, unless attachToOrm is false', async () => {
    const compile = (options: Parameters<typeof BemiModule.forRoot>[0]) =>
      Test.createTestingModule({ imports: [BemiModule.forRoot(options)] })
        .compile()
        .then((m) => m.createNestApplication({ logger: false }).init());
    await expect(compile({})).rejects.toThrow(/found no MikroORM instance.*attachToOrm: false/);
    const app = await compile({ attachToOrm: false });
    await app.close();
  });

  it('shares the app\'s own ClsModule store instead of creating a second one', async () => {
    let app: INestApplication | undefined;
    try {
      app = await createTodoApp({
        dbUrl: db.url,
        imports: [
          ClsModule.forRoot({ global: true, middleware: { mount: true, setup: (cls) => cls.set('app-key', 'from-app-middleware') } }),
          (() => {
            @Module({ controllers: [ClsProbeController] })
            class ProbeModule {}
            return ProbeModule;
          })(),
        ],
      });
      await app.listen(0, '127.0.0.1');
      const url = (await app.getUrl()).replace('[::1]', '127.0.0.1');
      const res = await request(url).get('/cls').set('x-user-id', '9').expect(200);
      expect(res.body.appKey).toBe('from-app-middleware');
      expect(res.body.fromCls).toEqual({ endpoint: '/cls', method: 'GET', userId: 9 });
      expect(res.body.fromBemi).toEqual(res.body.fromCls);
      // The hook was installed once on the app's ORM.
      const orm = app.get(MikroORM);
      expect(typeof orm.config.get('onQuery')).toBe('function');
    } finally {
      await app?.close();
    }
  });
});
