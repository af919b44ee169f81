import { MikroORM } from '@mikro-orm/core';
import { PostgreSqlDriver } from '@mikro-orm/postgresql';
import { BemiChange } from '../../lib/history/bemi-change.entity';
import { withClient } from '../support/database';
import { syncCapture, withContext } from '../capture/support/capture-helpers';
import { startCapturedTrail, type CapturedTrail } from './captured-trail';

/** The database roles of each change, through the real capture path: in changes(), its filter and BemiChange. */
describe('history: the database roles of every change (real PostgreSQL, captured)', () => {
  let trail: CapturedTrail;
  let other: string;

  beforeAll(async () => {
    trail = await startCapturedTrail('history_roles', `CREATE TABLE note (id int PRIMARY KEY, body text)`);
    const { db } = trail;
    other = `jobs_${db.name.slice(-8)}`;
    await db.query(`CREATE ROLE ${other} LOGIN PASSWORD 'jobs'; GRANT ALL ON note TO ${other}; GRANT ${other} TO postgres`);
    const url = new URL(db.url);
    url.username = other;
    url.password = 'jobs';
    await db.query(withContext({ userId: 1 }, `INSERT INTO note VALUES (1, 'by the app')`));
    await withClient(url.toString(), (c) => c.query(`INSERT INTO note VALUES (2, 'by the jobs role')`));
    await withClient(db.url, async (c) => {
      await c.query(`SET ROLE ${other}`);
      await c.query(`UPDATE note SET body = 'the app, acting as jobs' WHERE id = 1`);
    });
    await syncCapture(db);
  });

  afterAll(async () => {
    await trail.db.query(`DROP OWNED BY ${other}`);
    await trail.close();
    await withClient(trail.db.url.replace(`/${trail.db.name}`, '/postgres'), (c) => c.query(`DROP ROLE ${other}`));
  });

  it('gives each change its role and session role', async () => {
    const changes = await (await trail.history()).changes('note');
    expect(changes.map((c) => [c.primaryKey, c.operation, c.role, c.sessionRole])).toEqual([
      ['1', 'CREATE', 'postgres', 'postgres'],
      ['2', 'CREATE', other, other],
      ['1', 'UPDATE', other, 'postgres'],
    ]);
  });

  it('filters by role: the role acted as or the login, one or several', async () => {
    const history = await trail.history();
    const keys = async (role: string | string[]) => (await history.changes('note', { role })).map((c) => `${c.primaryKey}:${c.operation}`);
    expect(await keys(other)).toEqual(['2:CREATE', '1:UPDATE']);
    expect(await keys('postgres')).toEqual(['1:CREATE', '1:UPDATE']);
    expect(await keys([other, 'postgres'])).toEqual(['1:CREATE', '2:CREATE', '1:UPDATE']);
    expect(await keys('nobody')).toEqual([]);
    await expect(history.changes('note', { role: [] })).rejects.toThrow(/"role" must be a role name or a non-empty array of them/);
  });

  it('maps the roles on the BemiChange entity', async () => {
    const orm = await MikroORM.init({ driver: PostgreSqlDriver, clientUrl: trail.db.url, entities: [BemiChange], allowGlobalContext: true, debug: false });
    try {
      const rows = await orm.em.fork().find(BemiChange, { table: 'note', role: other }, { orderBy: { commitPosition: 'asc', seq: 'asc' } });
      expect(rows.map((r) => [r.primaryKey, r.operation, r.role, r.sessionRole])).toEqual([
        ['2', 'CREATE', other, other],
        ['1', 'UPDATE', other, 'postgres'],
      ]);
    } finally {
      await orm.close(true);
    }
  });
});
