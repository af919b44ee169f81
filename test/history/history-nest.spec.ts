import { Test, type TestingModule } from '@nestjs/testing';
import { MikroOrmModule } from '@mikro-orm/nestjs';
import { PostgreSqlDriver } from '@mikro-orm/postgresql';
import { BemiModule, BemiService, bemiMigrationSql } from '../../lib';
import { BemiChange } from '../../lib/history/bemi-change.entity';
import { BemiHistory } from '../../lib/history/bemi-history';
import { WalReader } from '../support/wal-reader';
import { historyEnv, t, Todo, TodoSchema, type HistoryEnv } from './history-fixture';

/**
 * BemiHistory as a Nest provider next to BemiModule and MikroOrmModule: what one line in
 * BemiModule's providers/exports gives an application.
 */
describe('BemiHistory in a Nest application', () => {
  let env: HistoryEnv;
  let moduleRef: TestingModule;
  let wal: WalReader;

  beforeAll(async () => {
    env = await historyEnv('history_nest');
    await env.db.query(bemiMigrationSql().up);
    await env.trail.startCapture(t(0));
    moduleRef = await Test.createTestingModule({
      imports: [
        MikroOrmModule.forRoot({ driver: PostgreSqlDriver, clientUrl: env.db.url, entities: [TodoSchema, BemiChange], allowGlobalContext: true }),
        BemiModule.forRoot(),
      ],
      providers: [BemiHistory],
    }).compile();
    await moduleRef.init();
    wal = await WalReader.create(env.db.url);
  });

  afterAll(async () => {
    await wal?.close();
    await moduleRef?.close();
    await env.close();
  });

  it('is injectable, reads the trail and reverts with the context of BemiService.run()', async () => {
    const history = moduleRef.get(BemiHistory);
    const row = (task: string) => ({ id: 1, task, is_completed: false, due_at: null, amount: null, views: null });
    await env.trail.commit(t(1), [{ table: 'todo', operation: 'CREATE', key: '1', after: row('one') }], { apply: true });
    const [update] = await env.trail.commit(t(2), [{ table: 'todo', operation: 'UPDATE', key: '1', before: row('one'), after: row('uno') }], { apply: true });
    expect(((await history.at(Todo, 1, t(1))) as Todo).task).toBe('one');

    await wal.read();
    await moduleRef.get(BemiService).run({ userId: 5, job: 'undo' }, () => history.revert(update));
    const changes = await wal.readChanges();
    expect(changes.map((c) => [c.operation, c.context])).toEqual([['UPDATE', { userId: 5, job: 'undo', revertOf: update }]]);
    expect(await env.db.query(`SELECT task FROM todo WHERE id = 1`)).toEqual([{ task: 'one' }]);
  });

  it('lets an application without a default MikroORM boot, and explains on first use', async () => {
    const bare = await Test.createTestingModule({ imports: [BemiModule.forRoot({ attachToOrm: false })], providers: [BemiHistory] }).compile();
    await bare.init();
    try {
      await expect(bare.get(BemiHistory).changes({})).rejects.toThrow(/no MikroORM instance.*BemiHistory.create\(orm\)/);
    } finally {
      await bare.close();
    }
  });
});
