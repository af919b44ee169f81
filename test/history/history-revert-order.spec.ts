import { MikroORM } from '@mikro-orm/core';
import { PostgreSqlDriver, type EntityManager } from '@mikro-orm/postgresql';
import type { BemiCaptureWorker } from '../../lib/capture/capture.worker';
import { BemiChange } from '../../lib/history/bemi-change.entity';
import { BemiHistory } from '../../lib/history/bemi-history';
import { BemiRevertConflictError, BemiRevertOrderError, BemiRevertUncheckableError, BemiRevertUnsupportedError } from '../../lib/history/history.errors';
import { createCaptureDatabase, startWorker, stopAndDropSlot, syncCapture } from '../capture/support/capture-helpers';
import type { TestDatabase } from '../support/database';

const HMAC_KEY = 'revert-order-hmac-key-0123';

const DDL = `
  CREATE TABLE org (id int PRIMARY KEY, name text NOT NULL);
  CREATE TABLE team (id int PRIMARY KEY, org_id int NOT NULL REFERENCES org ON DELETE CASCADE, name text NOT NULL);
  CREATE TABLE member (id int PRIMARY KEY, team_id int NOT NULL REFERENCES team ON DELETE CASCADE, name text NOT NULL);

  -- Deferred keys: the only way one transaction can insert children before their parent.
  CREATE TABLE project (id int PRIMARY KEY, name text NOT NULL);
  CREATE TABLE task (id int PRIMARY KEY, project_id int NOT NULL REFERENCES project ON DELETE CASCADE DEFERRABLE INITIALLY DEFERRED, name text NOT NULL);
  CREATE TABLE subtask (id int PRIMARY KEY, task_id int NOT NULL REFERENCES task ON DELETE CASCADE DEFERRABLE INITIALLY DEFERRED, name text NOT NULL);

  CREATE TABLE node (id int PRIMARY KEY, parent_id int REFERENCES node ON DELETE CASCADE, label text NOT NULL);
  CREATE TABLE pair (id int PRIMARY KEY, partner_id int REFERENCES pair, label text NOT NULL);
  CREATE TABLE dpair (id int PRIMARY KEY, partner_id int CONSTRAINT dpair_partner_fk REFERENCES dpair DEFERRABLE, label text NOT NULL);

  CREATE TABLE account (id int PRIMARY KEY, name text NOT NULL, email text NOT NULL, verified boolean NOT NULL, born timestamptz NOT NULL);
  CREATE TABLE vault (id int PRIMARY KEY, label text NOT NULL, pin text NOT NULL);
`;

describe('revertTransaction() ordered by foreign keys, and the changed-since check of redacted columns (real capture)', () => {
  let db: TestDatabase;
  let worker: BemiCaptureWorker;
  let orm: MikroORM;
  let history: BemiHistory;

  /** The stored changes of a table, oldest first. */
  const changes = (table: string) =>
    db.query<{ id: string; operation: string; after: Record<string, unknown> }>(`SELECT id, operation, after FROM changes WHERE "table" = $1 ORDER BY commit_position, seq`, [table]);
  const ids = async (table: string) => (await db.query(`SELECT id FROM ${table} ORDER BY id`)).map((r) => r.id);

  beforeAll(async () => {
    db = await createCaptureDatabase('revert_order', DDL, { replicaIdentityFull: true });
    ({ worker } = await startWorker(db, {
      rules: { hmacKey: HMAC_KEY, tables: { account: { redact: { email: 'hmac', verified: 'hmac', born: 'hmac' } }, vault: { redact: { pin: 'mask' } } } },
    }));
    // The application's session prints timestamps in another zone than the capture's walsender
    // (UTC): the HMAC check must print values the capture's way, not the session's.
    const url = new URL(db.url);
    url.searchParams.set('options', '-c TimeZone=Asia/Tokyo');
    orm = await MikroORM.init({ driver: PostgreSqlDriver, clientUrl: url.toString(), entities: [BemiChange], allowGlobalContext: true });
    history = BemiHistory.create(orm, { hmacKey: HMAC_KEY });
  });

  afterAll(async () => {
    await orm?.close(true);
    await stopAndDropSlot(worker, db);
    await db?.drop();
  });

  it('restores a cascaded DELETE over two levels: parents re-inserted before their children', async () => {
    await db.query(`INSERT INTO org VALUES (1, 'acme');
      INSERT INTO team VALUES (10, 1, 'red'), (11, 1, 'blue');
      INSERT INTO member VALUES (100, 10, 'ann'), (101, 10, 'bob'), (110, 11, 'cy')`);
    await db.query(`DELETE FROM org WHERE id = 1`); // cascades to the teams, then to their members
    await syncCapture(db);
    const [deletion] = (await changes('org')).filter((c) => c.operation === 'DELETE');
    // The trail has the cascade as PostgreSQL ran it: org first, members last.
    const tx = await history.transaction(deletion.id);
    expect(tx.map((c) => c.table)).toEqual(['org', 'team', 'team', 'member', 'member', 'member']);

    await history.revertTransaction(deletion.id);
    expect(await db.query(`SELECT m.name, t.name AS team, o.name AS org FROM member m JOIN team t ON t.id = m.team_id JOIN org o ON o.id = t.org_id ORDER BY m.id`)).toEqual([
      { name: 'ann', team: 'red', org: 'acme' },
      { name: 'bob', team: 'red', org: 'acme' },
      { name: 'cy', team: 'blue', org: 'acme' },
    ]);
  });

  it('reverts an INSERT of parent and children by deleting the children first', async () => {
    // Children inserted before their parent (deferred keys): newest first would delete the
    // project first, its cascade would take the tasks, and their own reverts would find nothing.
    await db.query(`BEGIN;
      INSERT INTO subtask VALUES (300, 30, 'sub');
      INSERT INTO task VALUES (30, 3, 'task');
      INSERT INTO project VALUES (3, 'project');
      COMMIT`);
    await syncCapture(db);
    const [create] = await changes('project');
    await history.revertTransaction(create.id);
    expect([await ids('project'), await ids('task'), await ids('subtask')]).toEqual([[], [], []]);
    await syncCapture(db);
    // Every row was deleted by the revert itself (none by a cascade, which would have failed the revert).
    const deletes = await db.query(`SELECT "table" FROM changes WHERE operation = 'DELETE' AND "table" IN ('project', 'task', 'subtask') ORDER BY commit_position, seq`);
    expect(deletes.map((d) => d.table)).toEqual(['subtask', 'task', 'project']);
  });

  it('orders the rows of a self-referencing table by their references, without deferring anything', async () => {
    await db.query(`INSERT INTO node VALUES (1, NULL, 'root'), (2, 1, 'a'), (3, 2, 'a.a'), (4, 1, 'b'), (5, 3, 'a.a.a')`);
    await db.query(`DELETE FROM node WHERE id = 1`);
    await syncCapture(db);
    const [deletion] = (await changes('node')).filter((c) => c.operation === 'DELETE');
    await history.revertTransaction(deletion.id);
    expect(await db.query(`SELECT id, parent_id, label FROM node ORDER BY id`)).toEqual([
      { id: 1, parent_id: null, label: 'root' },
      { id: 2, parent_id: 1, label: 'a' },
      { id: 3, parent_id: 2, label: 'a.a' },
      { id: 4, parent_id: 1, label: 'b' },
      { id: 5, parent_id: 3, label: 'a.a.a' },
    ]);
  });

  it('refuses rows that reference each other in a cycle unless the key is DEFERRABLE, then defers it', async () => {
    for (const table of ['pair', 'dpair']) {
      await db.query(`INSERT INTO ${table} VALUES (1, NULL, 'one'), (2, 1, 'two'); UPDATE ${table} SET partner_id = 2 WHERE id = 1`);
      await db.query(`DELETE FROM ${table}`); // one statement: the keys are checked once both rows are gone
    }
    await syncCapture(db);
    const deletionOf = async (table: string) => (await changes(table)).filter((c) => c.operation === 'DELETE')[0].id;

    const err = await history.revertTransaction(await deletionOf('pair')).catch((e) => e);
    expect(err).toBeInstanceOf(BemiRevertOrderError);
    expect(err).toBeInstanceOf(BemiRevertUnsupportedError);
    expect(err.tables).toEqual(['public.pair']);
    expect(err.constraints).toEqual(['public.pair_partner_id_fkey']);
    expect(err.message).toMatch(/reference each other in a cycle.*not DEFERRABLE.*Make the foreign key\(s\) DEFERRABLE/);
    expect(await ids('pair')).toEqual([]);

    await history.revertTransaction(await deletionOf('dpair'));
    expect(await db.query(`SELECT id, partner_id FROM dpair ORDER BY id`)).toEqual([
      { id: 1, partner_id: 2 },
      { id: 2, partner_id: 1 },
    ]);
  });

  it('checks HMAC-redacted columns against the live row: refuses when one changed since, reverts when none did', async () => {
    await db.query(`INSERT INTO account VALUES (1, 'Ann', 'ann@example.com', true, '2001-02-03 04:05:06.789+00')`);
    await db.query(`UPDATE account SET name = 'Annie' WHERE id = 1`);
    await syncCapture(db);
    const [, rename] = await changes('account');
    expect(rename.after.email).toMatch(/^hmac-sha256:[0-9a-f]{64}$/);

    await db.query(`UPDATE account SET email = 'someone@else.example' WHERE id = 1`); // the revert must not hide this
    const err = await history.revert(rename.id).catch((e) => e);
    expect(err).toBeInstanceOf(BemiRevertConflictError);
    expect(err.message).toMatch(/changed since \(the live value of email no longer has the HMAC the change recorded\)/);
    expect((await db.query(`SELECT name FROM account WHERE id = 1`))[0].name).toBe('Annie');

    await db.query(`UPDATE account SET email = 'ann@example.com' WHERE id = 1`);
    // Inside the caller's transaction, whose own TimeZone survives the check.
    const zone = await (orm.em as EntityManager).fork().transactional(async (em) => {
      await em.execute(`SET LOCAL TimeZone = 'America/Denver'`);
      await history.revert(rename.id, { em });
      return (await em.execute(`SELECT current_setting('TimeZone') AS zone`))[0].zone;
    });
    expect(zone).toBe('America/Denver');
    expect((await db.query(`SELECT name FROM account WHERE id = 1`))[0].name).toBe('Ann');
  });

  it('refuses, naming the columns, when a redacted column cannot be compared: masked, or HMACs without the key', async () => {
    await db.query(`INSERT INTO vault VALUES (1, 'safe', '1234')`);
    await db.query(`UPDATE vault SET label = 'big safe' WHERE id = 1`);
    await db.query(`INSERT INTO account VALUES (2, 'Bob', 'bob@example.com', false, '1999-12-31 23:59:59+00')`);
    await db.query(`UPDATE account SET name = 'Robert' WHERE id = 2`);
    await syncCapture(db);
    const [, relabel] = await changes('vault');
    expect(relabel.after.pin).toBe('[REDACTED]');

    const masked = await history.revert(relabel.id).catch((e) => e);
    expect(masked).toBeInstanceOf(BemiRevertUncheckableError);
    expect(masked.columns).toEqual(['pin']);
    expect(masked.hmacKeyMissing).toBe(false);
    expect(masked.message).toMatch(/public\.vault column\(s\) pin were recorded masked \(rules\), so whether the row changed since cannot be checked/);
    expect((await db.query(`SELECT label FROM vault WHERE id = 1`))[0].label).toBe('big safe');

    const rename = (await changes('account')).filter((c) => c.operation === 'UPDATE' && c.after.id === 2)[0];
    const keyless = await BemiHistory.create(orm).revert(rename.id).catch((e) => e);
    expect(keyless).toBeInstanceOf(BemiRevertUncheckableError);
    expect(keyless.columns).toEqual(['email', 'verified', 'born']);
    expect(keyless.hmacKeyMissing).toBe(true);
    expect(keyless.message).toMatch(/BemiHistory\.create\(orm, \{ hmacKey \}\)/);
    expect((await db.query(`SELECT name FROM account WHERE id = 2`))[0].name).toBe('Robert');
  });
});
