import 'reflect-metadata';
import { createHmac } from 'node:crypto';
import type { INestApplication } from '@nestjs/common';
import { EntitySchema } from '@mikro-orm/core';
import { EntityManager } from '@mikro-orm/postgresql';
import { BemiHistory, BemiIgnore, BemiRedact, BemiRevertUncheckableError, BemiRevertUnsupportedError, BemiService, bemiMigrationSql } from '../../lib';
import { createTestDatabase, type TestDatabase } from '../support/database';
import { TODO_DDL, TodoSchema } from '../support/todo';
import { createTodoApp, ormOf } from '../support/todo-app';
import { WalReader } from '../support/wal-reader';
import { uniqueSlot, waitFor } from '../capture/support/capture-helpers';

const HMAC_KEY = 'test-hmac-key-0123456789';

class Account {
  id!: number;
  name!: string;
  @BemiRedact() passwordHash!: string;
  @BemiRedact('hmac') email!: string;
  @BemiIgnore() lastSeenAt!: Date;
}

@BemiIgnore()
class LoginAttempt {
  id!: number;
  who!: string;
}

class Note {
  id!: number;
  title!: string;
  body!: string;
  internalScore!: number;
}

const AccountSchema = new EntitySchema<Account>({
  class: Account,
  tableName: 'account',
  properties: {
    id: { type: 'number', primary: true, autoincrement: true },
    name: { type: 'string', columnType: 'text' },
    passwordHash: { type: 'string', columnType: 'text' },
    email: { type: 'string', columnType: 'text' },
    lastSeenAt: { type: 'Date', columnType: 'timestamptz' },
  },
});
const LoginAttemptSchema = new EntitySchema<LoginAttempt>({
  class: LoginAttempt,
  tableName: 'login_attempt',
  properties: { id: { type: 'number', primary: true, autoincrement: true }, who: { type: 'string', columnType: 'text' } },
});
const NoteSchema = new EntitySchema<Note>({
  class: Note,
  tableName: 'note',
  properties: {
    id: { type: 'number', primary: true, autoincrement: true },
    title: { type: 'string', columnType: 'text' },
    body: { type: 'string', columnType: 'text' },
    internalScore: { type: 'number', columnType: 'int' },
  },
});

const SECRETS = ['s3cr3t-hash-1', 's3cr3t-hash-2', 'ann@example.com', 'ann.new@example.com', 'hunter2-password', 'Bearer tok-xyz', 'top-secret-body'];
const hmac = (value: string) => `hmac-sha256:${createHmac('sha256', HMAC_KEY).update(value).digest('hex')}`;

describe('redaction and ignore rules, through the real capture path', () => {
  let db: TestDatabase;
  let wal: WalReader;
  let app: INestApplication;
  const slot = uniqueSlot();

  beforeAll(async () => {
    db = await createTestDatabase('redaction');
    await db.query(TODO_DDL);
    await db.query(`CREATE TABLE account (id serial PRIMARY KEY, name text NOT NULL, password_hash text NOT NULL, email text NOT NULL, last_seen_at timestamptz NOT NULL)`);
    await db.query(`CREATE TABLE login_attempt (id serial PRIMARY KEY, who text NOT NULL)`);
    await db.query(`CREATE TABLE note (id serial PRIMARY KEY, title text NOT NULL, body text NOT NULL, internal_score int NOT NULL)`);
    await db.query(bemiMigrationSql({ replicaIdentityFull: true }).up);
    wal = await WalReader.create(db.url);
    app = await createTodoApp({
      dbUrl: db.url,
      orm: { entities: [TodoSchema, AccountSchema, LoginAttemptSchema, NoteSchema] },
      bemi: {
        capture: { slotName: slot, publicationName: slot, progressIntervalMs: 0 },
        rules: {
          hmacKey: HMAC_KEY,
          skipIgnoredOnlyUpdates: true,
          tables: { note: { only: ['title', 'internalScore'] } },
        },
      },
    });
  });

  afterAll(async () => {
    await app?.close();
    await wal?.close();
    await db?.drop();
  });

  const changes = (table: string) => db.query(`SELECT operation, before, after, context FROM changes WHERE "table" = $1 ORDER BY commit_position, seq`, [table]);

  it('masks, hashes and leaves out what the rules say, and keeps secrets out of the WAL context', async () => {
    const bemi = app.get(BemiService);
    const em = () => ormOf(app).em.fork() as EntityManager;
    const context = { userId: 7, body: { password: 'hunter2-password', nested: [{ Authorization: 'Bearer tok-xyz' }] } };

    await bemi.run(context, async () => {
      const e = em();
      e.create(Account, { name: 'Ann', passwordHash: 's3cr3t-hash-1', email: 'ann@example.com', lastSeenAt: new Date('2026-01-01T00:00:00Z') });
      e.create(LoginAttempt, { who: 'ann@example.com' });
      e.create(Note, { title: 'Hello', body: 'top-secret-body', internalScore: 3 });
      await e.flush();
    });
    await bemi.run({ userId: 7, step: 'password' }, async () => {
      const e = em();
      const account = await e.findOneOrFail(Account, { name: 'Ann' });
      account.passwordHash = 's3cr3t-hash-2';
      await e.flush();
    });
    await bemi.run({ userId: 7, step: 'touch' }, async () => {
      await em().nativeUpdate(Account, { name: 'Ann' }, { lastSeenAt: new Date('2026-02-01T00:00:00Z') }); // only an ignored column
    });
    await bemi.run({ userId: 7, step: 'email' }, async () => {
      await em().nativeUpdate(Account, { name: 'Ann' }, { email: 'ann.new@example.com', lastSeenAt: new Date('2026-03-01T00:00:00Z') });
    });
    await bemi.run({ userId: 7, step: 'delete' }, async () => {
      await em().nativeDelete(Account, { name: 'Ann' });
    });
    await waitFor(async () => (await changes('account')).some((c) => c.operation === 'DELETE'), 'the account DELETE');

    const account = await changes('account');
    expect(account.map((c) => [c.operation, c.context.step ?? 'create'])).toEqual([
      ['CREATE', 'create'],
      ['UPDATE', 'password'],
      // the lastSeenAt-only update is not stored (skipIgnoredOnlyUpdates, REPLICA IDENTITY FULL)
      ['UPDATE', 'email'],
      ['DELETE', 'delete'],
    ]);
    const id = account[0].after.id;
    expect(account[0].after).toEqual({ id, name: 'Ann', password_hash: '[REDACTED]', email: hmac('ann@example.com') });
    // A masked value that changed is visible as a change, never as a value.
    expect(account[1].before).toEqual({ id, name: 'Ann', password_hash: '[REDACTED:old]', email: hmac('ann@example.com') });
    expect(account[1].after).toEqual({ id, name: 'Ann', password_hash: '[REDACTED]', email: hmac('ann@example.com') });
    expect(account[2].before.email).toBe(hmac('ann@example.com'));
    expect(account[2].after.email).toBe(hmac('ann.new@example.com'));
    expect(account[2].before.password_hash).toBe('[REDACTED]');
    expect(account[3].before).toEqual({ id, name: 'Ann', password_hash: '[REDACTED]', email: hmac('ann.new@example.com') });

    // An ignored table leaves no rows; `only` keeps the listed columns and the key.
    expect(await changes('login_attempt')).toEqual([]);
    const [note] = await changes('note');
    expect(note.after).toEqual({ id: note.after.id, title: 'Hello', internal_score: 3 });

    // Context secrets are masked before they leave the process: in `changes` and in the WAL itself.
    expect(account[0].context).toEqual({ userId: 7, body: { password: '[REDACTED]', nested: [{ Authorization: '[REDACTED]' }] } });
    const walMessages = (await wal.read()).flatMap((tx) => tx.events).filter((e) => e.kind === 'message');
    expect(walMessages.length).toBeGreaterThan(0);
    const walText = JSON.stringify(walMessages);
    expect(walText).toContain('[REDACTED]');
    expect(walText).not.toContain('hunter2-password');
    expect(walText).not.toContain('Bearer tok-xyz');

    // No secret appears anywhere in the trail.
    const [{ trail }] = await db.query(`SELECT string_agg(before::text || after::text || context::text, ' ') AS trail FROM changes`);
    for (const secret of SECRETS) expect(trail).not.toContain(secret);

    // History shows that the password changed, without the value.
    const history = app.get(BemiHistory);
    const trailOfAnn = await history.changes(Account, { primaryKey: id });
    expect(history.diff(trailOfAnn[1])).toEqual({ passwordHash: ['[REDACTED:old]', '[REDACTED]'] });
  });

  it('reverts around redacted columns, and refuses what it cannot put back', async () => {
    const bemi = app.get(BemiService);
    const history = app.get(BemiHistory);
    const em = () => ormOf(app).em.fork() as EntityManager;
    const id = await bemi.run({ userId: 8 }, async () => {
      const e = em();
      const a = e.create(Account, { name: 'Bob', passwordHash: 'bob-hash-1', email: 'bob@example.com', lastSeenAt: new Date() });
      await e.flush();
      return a.id;
    });
    await bemi.run({ userId: 8 }, () => em().nativeUpdate(Account, { id }, { name: 'Robert' }));
    await bemi.run({ userId: 8 }, () => em().nativeUpdate(Account, { id }, { passwordHash: 'bob-hash-2' }));
    await waitFor(async () => (await history.changes(Account, { primaryKey: id })).length === 3, 'three changes of Bob');
    const [, rename, password] = await history.changes(Account, { primaryKey: id });

    // The password change cannot be undone: its old value was never stored.
    await expect(history.revert(password)).rejects.toThrow(BemiRevertUnsupportedError);
    await expect(history.revert(password)).rejects.toThrow(/password_hash was recorded redacted \(rules\), so the old value is unknown/);
    // Nor the rename: password_hash is masked, so whether the row changed since cannot be checked
    // (it did: the password changed after the rename), and nothing is written.
    await expect(history.revert(rename)).rejects.toThrow(BemiRevertUncheckableError);
    const [row] = await db.query(`SELECT name, password_hash, email FROM account WHERE id = $1`, [id]);
    expect(row).toEqual({ name: 'Robert', password_hash: 'bob-hash-2', email: 'bob@example.com' });

    // A deleted row with redacted values cannot be restored.
    await bemi.run({ userId: 8 }, () => em().nativeDelete(Account, { id }));
    await waitFor(async () => (await history.changes(Account, { primaryKey: id, operation: 'DELETE' })).length === 1, 'the DELETE');
    const [deletion] = await history.changes(Account, { primaryKey: id, operation: 'DELETE' });
    await expect(history.revert(deletion)).rejects.toThrow(/email, password_hash were recorded redacted/);
  });
});
