import 'reflect-metadata';
import { MikroORM } from '@mikro-orm/core';
import { PostgreSqlDriver } from '@mikro-orm/postgresql';
import { BemiChange } from '../../lib/history/bemi-change.entity';
import { BemiHistory } from '../../lib/history/bemi-history';
import { pruneChanges } from '../../lib/retention/prune-changes';
import { bemiAppendOnlyGuardSql, bemiTrailRolesSql } from '../../lib/trail/append-only';
import { bemiChangesTableSql } from '../../lib/trail/changes-table';
import { createTestDatabase, urlFor, withClient, type TestDatabase } from '../support/database';
import { seedChanges, series } from '../retention/support';

const suffix = Math.random().toString(36).slice(2, 8);
const OWNER = `bemi_owner_${suffix}`;
const READER = `bemi_reader_${suffix}`;

/** The statements a role that must not change the trail may try, each refused. */
const TAMPERING = [
  `UPDATE changes SET context = '{"userId":"admin"}'`,
  `DELETE FROM changes`,
  `TRUNCATE changes`,
  `INSERT INTO changes (database, schema, "table", operation, committed_at, queued_at, transaction_id, position, commit_position, seq)
     VALUES ('d', 'public', 'todo', 'CREATE', now(), now(), 1, 1, 1, 0)`,
  `ALTER TABLE changes DISABLE TRIGGER ALL`,
];

describe('append-only trail (real PostgreSQL)', () => {
  let db: TestDatabase;

  beforeAll(async () => {
    db = await createTestDatabase('trail_append_only');
    await db.query(bemiChangesTableSql().up);
    await seedChanges(db, series('todo', 3, '2025-12-01T00:00:00Z'));
    await db.query(`CREATE ROLE ${OWNER} LOGIN PASSWORD 'pw'; CREATE ROLE ${READER} LOGIN PASSWORD 'pw'`);
  });

  afterAll(async () => {
    await db?.drop();
    await withClient(urlFor('postgres'), (c) => c.query(`DROP ROLE IF EXISTS ${READER}; DROP ROLE IF EXISTS ${OWNER}`));
  });

  const as = (role: string) => {
    const url = new URL(db.url);
    url.username = role;
    url.password = 'pw';
    return url.toString();
  };

  describe('bemiTrailRolesSql: owned by the capture role, SELECT only for the application', () => {
    beforeAll(async () => {
      // A reader that had been granted everything (the default wiring) loses it.
      await db.query(`GRANT ALL ON ALL TABLES IN SCHEMA public TO ${READER}`);
      await db.query(bemiTrailRolesSql({ owner: OWNER, readers: [READER] }));
      await db.query(bemiTrailRolesSql({ owner: OWNER, readers: [READER] })); // idempotent
    });

    it.each(TAMPERING)('refuses the reader: %s', async (sql) => {
      await expect(withClient(as(READER), (c) => c.query(sql))).rejects.toMatchObject({ code: '42501' });
    });

    it('lets the reader read the trail, and BemiHistory work on it', async () => {
      const orm = await MikroORM.init({ driver: PostgreSqlDriver, clientUrl: as(READER), entities: [BemiChange], allowGlobalContext: true, debug: false });
      try {
        const changes = await BemiHistory.create(orm).changes('todo');
        expect(changes).toHaveLength(3);
      } finally {
        await orm.close(true);
      }
    });

    it('lets the owner write, and rejects a reader that is the owner', async () => {
      await withClient(as(OWNER), (c) =>
        c.query(`INSERT INTO changes (database, schema, "table", operation, committed_at, queued_at, transaction_id, position, commit_position, seq)
                 VALUES (current_database(), 'public', 'todo', 'CREATE', now(), now(), 1, 9000, 9000, 0)`),
      );
      expect(() => bemiTrailRolesSql({ owner: OWNER, readers: [OWNER] })).toThrow(/cannot also be a reader/);
    });
  });

  describe('bemiAppendOnlyGuardSql: one role for everything', () => {
    beforeAll(async () => {
      await db.query(bemiAppendOnlyGuardSql().up);
      await db.query(bemiAppendOnlyGuardSql().up); // idempotent
    });

    it.each(TAMPERING.slice(0, 3))('refuses, saying why: %s', async (sql) => {
      await expect(db.query(sql)).rejects.toThrow(/is refused: the audit trail is append-only/);
    });

    it('lets inserts and retention through', async () => {
      await seedChanges(db, series('todo', 1, '2025-12-02T00:00:00Z'));
      const result = await pruneChanges(db.url, { maxAge: '1d', now: '2026-01-01T00:00:00Z' });
      expect(result.rows).toBeGreaterThan(0);
    });

    it('goes with down', async () => {
      await db.query(bemiAppendOnlyGuardSql().down);
      await db.query(`DELETE FROM changes WHERE commit_position = 9000`);
    });
  });
});
