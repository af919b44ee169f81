import 'reflect-metadata';
import { MikroORM } from '@mikro-orm/core';
import { PostgreSqlDriver } from '@mikro-orm/postgresql';
import { BemiChange } from '../../lib/history/bemi-change.entity';
import { BemiHistory } from '../../lib/history/bemi-history';
import { pruneChanges } from '../../lib/retention/prune-changes';
import { APPEND_ONLY_GUARD, bemiAppendOnlyGuardSql, bemiTrailRolesSql } from '../../lib/trail/append-only';
import { bemiChangesPartitionSql, bemiChangesTableSql } from '../../lib/trail/changes-table';
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
      // A guard installed in the one-role days, by the application's role: its function runs as
      // whoever deletes from changes, so its owner must not be a reader.
      await db.query(bemiAppendOnlyGuardSql().up);
      await db.query(`ALTER FUNCTION ${APPEND_ONLY_GUARD}() OWNER TO ${READER}`);
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

    it("gives the guard's function to the owner", async () => {
      expect(await db.query(`SELECT pg_get_userbyid(proowner) AS owner FROM pg_proc WHERE oid = '${APPEND_ONLY_GUARD}()'::regprocedure`)).toEqual([{ owner: OWNER }]);
      await db.query(bemiAppendOnlyGuardSql().down);
    });

    it('lets the owner write, and rejects a reader that is the owner', async () => {
      await withClient(as(OWNER), (c) =>
        c.query(`INSERT INTO changes (database, schema, "table", operation, committed_at, queued_at, transaction_id, position, commit_position, seq)
                 VALUES (current_database(), 'public', 'todo', 'CREATE', now(), now(), 1, 9000, 9000, 0)`),
      );
      expect(() => bemiTrailRolesSql({ owner: OWNER, readers: [OWNER] })).toThrow(/cannot also be a reader/);
      expect(() => bemiTrailRolesSql({ owner: OWNER, readers: ['x$bemi$; DROP TABLE changes; --'] })).toThrow(/names cannot contain "\$bemi\$"/);
    });
  });

  describe('bemiTrailRolesSql on a partitioned trail', () => {
    beforeAll(async () => {
      await db.query(bemiChangesTableSql({ schema: 'parted', partitionByMonth: true }).up);
      await db.query(bemiChangesPartitionSql('2025-12', { schema: 'parted' }));
      // Two levels, and a leaf the application's role owns (as when it ran the partition migration).
      await db.query(`CREATE TABLE parted.changes_2026 PARTITION OF parted.changes FOR VALUES FROM ('2026-01-01') TO ('2027-01-01') PARTITION BY RANGE (committed_at);
        CREATE TABLE parted.changes_2026_01 PARTITION OF parted.changes_2026 FOR VALUES FROM ('2026-01-01') TO ('2026-02-01');
        ALTER TABLE parted.changes_2026_01 OWNER TO ${READER}`);
      await db.query(bemiTrailRolesSql({ schema: 'parted', owner: OWNER, readers: [READER] }));
    });

    it('gives every partition, at any depth, to the owner', async () => {
      const owners = await db.query(`SELECT relid::text AS t, pg_get_userbyid(c.relowner) AS owner FROM pg_partition_tree('parted.changes') p JOIN pg_class c ON c.oid = p.relid ORDER BY 1`);
      expect(owners).toEqual(['parted.changes', 'parted.changes_2025_12', 'parted.changes_2026', 'parted.changes_2026_01', 'parted.changes_default'].map((t) => ({ t, owner: OWNER })));
    });

    it.each(['parted.changes', 'parted.changes_2026', 'parted.changes_2026_01'])('refuses the reader a DELETE from %s, allows its SELECT', async (table) => {
      await expect(withClient(as(READER), (c) => c.query(`DELETE FROM ${table}`))).rejects.toMatchObject({ code: '42501' });
      await expect(withClient(as(READER), (c) => c.query(`SELECT count(*) FROM ${table}`))).resolves.toBeDefined();
    });
  });

  describe('bemiTrailRolesSql refuses, changing nothing', () => {
    /** The error a statement fails with, as a plain object (an Error's message does not enumerate). */
    const failure = (sql: string) => db.query(sql).then(
      () => undefined,
      (e: { code: string; message: string; hint?: string }) => ({ code: e.code, message: e.message, hint: e.hint }),
    );

    it('a trail that is not there yet (42P01)', async () => {
      expect(await failure(bemiTrailRolesSql({ schema: 'nowhere', owner: OWNER, readers: [READER] }))).toEqual({
        code: '42P01',
        message: 'nestjs-bemi: the trail is not there yet: no table nowhere.changes, nowhere._bemi_capture_state, nowhere._bemi_schema_log, nowhere._bemi_retention_horizon, nowhere._bemi_chain_anchor',
        hint: 'Start the capture worker once (it creates the trail tables) or run bemiChangesTableSql().up first, then run this again.',
      });
    });

    it('roles that do not exist (42704)', async () => {
      expect(await failure(bemiTrailRolesSql({ owner: OWNER, readers: [READER, `ghost_${suffix}`, 'Ghost Two'] }))).toMatchObject({
        code: '42704',
        message: `nestjs-bemi: role(s) ghost_${suffix}, "Ghost Two" do not exist`,
      });
    });

    it('a reader that is a superuser (42501)', async () => {
      expect(await failure(bemiTrailRolesSql({ owner: OWNER, readers: ['postgres'] }))).toMatchObject({ code: '42501', message: expect.stringMatching(/reader postgres is a superuser or a member of the owner/) });
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
