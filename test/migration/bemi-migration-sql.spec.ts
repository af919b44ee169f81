import { bemiMigrationSql } from '../../lib';
import { BEMI_SQL_OBJECTS } from '../../lib/migration/bemi-migration-sql';
import { createTestDatabase, TestDatabase, withClient } from '../support/database';
import { attribute, WalReader } from '../support/wal-reader';

const O = BEMI_SQL_OBJECTS;

async function triggeredTables(db: TestDatabase): Promise<string[]> {
  const rows = await db.query<{ rel: string }>(
    `SELECT tgrelid::regclass::text AS rel FROM pg_trigger WHERE tgname = $1 ORDER BY 1`,
    [O.trigger],
  );
  return rows.map((r) => r.rel);
}

async function bemiFunctions(db: TestDatabase): Promise<string[]> {
  const rows = await db.query<{ proname: string }>(`SELECT proname FROM pg_proc WHERE proname LIKE '\\_bemi%' ORDER BY 1`);
  return rows.map((r) => r.proname);
}

describe('bemiMigrationSql (run against PostgreSQL)', () => {
  let db: TestDatabase;

  beforeEach(async () => {
    db = await createTestDatabase('migration');
    await db.query(`
      CREATE SCHEMA "Other-Schema";
      CREATE TABLE todo (id serial PRIMARY KEY, task text);
      CREATE TABLE "UpperCase" (id int PRIMARY KEY);
      CREATE TABLE "with-dash" (id int PRIMARY KEY);
      CREATE TABLE "with space" (id int PRIMARY KEY);
      CREATE TABLE "with""quote" (id int PRIMARY KEY);
      CREATE TABLE changes (id int PRIMARY KEY);
      CREATE TABLE mikro_orm_migrations (id int PRIMARY KEY);
      CREATE TABLE _bemi_meta (id int PRIMARY KEY);
      CREATE UNLOGGED TABLE scratch (id int);
      CREATE TABLE "Other-Schema".thing (id int PRIMARY KEY);
      CREATE TABLE parted (id int, at date) PARTITION BY RANGE (at);
      CREATE TABLE parted_2024 PARTITION OF parted FOR VALUES FROM ('2024-01-01') TO ('2025-01-01');
    `);
  });

  afterEach(() => db.drop());

  it('installs a statement trigger on every tracked table, whatever its name, and skips the rest', async () => {
    await db.query(bemiMigrationSql().up);
    expect(await triggeredTables(db)).toEqual(
      ['"UpperCase"', '"with space"', '"with""quote"', '"with-dash"', 'parted', 'parted_2024', 'todo'].sort(),
    );
    const [t] = await db.query(`SELECT tgtype FROM pg_trigger WHERE tgname = $1 AND tgrelid = 'todo'::regclass`, [O.trigger]);
    // tgtype bits: 1 = row (must be unset), 2 = before, 4 insert, 8 delete, 16 update, 32 truncate
    expect(t.tgtype & 1).toBe(0);
    expect(t.tgtype & (2 | 4 | 8 | 16 | 32)).toBe(2 | 4 | 8 | 16 | 32);
  });

  it('tracks several schemas when asked', async () => {
    await db.query(bemiMigrationSql({ schemas: ['public', 'Other-Schema'] }).up);
    expect(await triggeredTables(db)).toContain('"Other-Schema".thing');
  });

  it('sets REPLICA IDENTITY FULL by default (as every generator does), and leaves it with replicaIdentityFull: false', async () => {
    const identity = async () => (await db.query(`SELECT relreplident FROM pg_class WHERE oid = 'todo'::regclass`))[0].relreplident;
    await db.query(bemiMigrationSql({ replicaIdentityFull: false }).up);
    expect(await identity()).toBe('d');
    await db.query(bemiMigrationSql().up);
    expect(await identity()).toBe('f');
  });

  it('is idempotent, and down removes every object it created', async () => {
    const sql = bemiMigrationSql();
    await db.query(sql.up);
    await db.query(sql.up);
    expect((await triggeredTables(db)).length).toBe(7);
    expect(await bemiFunctions(db)).toEqual([O.emitFunction, O.isTrackedFunction, O.onCreateFunction, O.trackFunction].sort());
    const [full] = await db.query(`SELECT relreplident FROM pg_class WHERE oid = 'todo'::regclass`);
    expect(full.relreplident).toBe('f');

    await db.query(sql.down);
    expect(await triggeredTables(db)).toEqual([]);
    expect(await bemiFunctions(db)).toEqual([]);
    expect(await db.query(`SELECT 1 FROM pg_event_trigger WHERE evtname = $1`, [O.eventTrigger])).toEqual([]);
    const [def] = await db.query(`SELECT relreplident FROM pg_class WHERE oid = 'todo'::regclass`);
    expect(def.relreplident).toBe('d');
    // down is harmless when run again, or on a database where up never ran
    await db.query(sql.down);
  });

  it('adds the trigger to tables created later through an event trigger', async () => {
    await db.query(bemiMigrationSql().up);
    await db.query(`CREATE TABLE later (id int PRIMARY KEY); CREATE TABLE changes_archive AS SELECT 1 AS id; CREATE TABLE "Other-Schema".not_tracked (id int)`);
    const tables = await triggeredTables(db);
    expect(tables).toEqual(expect.arrayContaining(['later', 'changes_archive']));
    expect(tables).not.toContain('"Other-Schema".not_tracked');
    const [full] = await db.query(`SELECT relreplident FROM pg_class WHERE oid = 'later'::regclass`);
    expect(full.relreplident).toBe('f');
  });

  it('explains the manual step with a NOTICE when the role may not create event triggers, and still installs the triggers', async () => {
    const role = `${db.name}_owner`;
    await db.query(`CREATE ROLE ${role} LOGIN PASSWORD 'pw'; ALTER DATABASE ${db.name} OWNER TO ${role}; ALTER SCHEMA public OWNER TO ${role};
      ALTER TABLE todo OWNER TO ${role}; ALTER TABLE "UpperCase" OWNER TO ${role}; ALTER TABLE "with-dash" OWNER TO ${role};
      ALTER TABLE "with space" OWNER TO ${role}; ALTER TABLE "with""quote" OWNER TO ${role}; ALTER TABLE parted OWNER TO ${role}; ALTER TABLE parted_2024 OWNER TO ${role};`);
    const url = new URL(db.url);
    url.username = role;
    url.password = 'pw';
    const notices: string[] = [];
    try {
      await withClient(url.toString(), async (c) => {
        c.on('notice', (n) => notices.push(n.message ?? ''));
        await c.query(bemiMigrationSql().up);
        // the context trigger works for this unprivileged role too
        await c.query(`/*Bemi {"userId":7} Bemi*/ INSERT INTO todo (task) VALUES ('x')`);
      });
      expect(notices.join('\n')).toMatch(/may not create event triggers/);
      expect((await triggeredTables(db)).length).toBe(7);
      expect(await db.query(`SELECT 1 FROM pg_event_trigger WHERE evtname = $1`, [O.eventTrigger])).toEqual([]);
    } finally {
      await db.query(`REASSIGN OWNED BY ${role} TO postgres; DROP OWNED BY ${role}`);
      await db.drop();
      await withClient(new URL('/postgres', db.url).toString().replace(`/${db.name}`, '/postgres'), (c) => c.query(`DROP ROLE ${role}`));
      db = await createTestDatabase('migration'); // afterEach drops it again
    }
  });

  describe('the trigger', () => {
    let wal: WalReader;

    beforeEach(async () => {
      await db.query(bemiMigrationSql().up);
      wal = await WalReader.create(db.url);
    });

    afterEach(() => wal.close());

    it('emits one transactional message per statement (not per row), before its rows', async () => {
      await db.query(`/*Bemi {"userId":1} Bemi*/ INSERT INTO todo (task) SELECT 'task ' || g FROM generate_series(1, 100) g`);
      const [tx] = await wal.read();
      expect(tx.events.filter((e) => e.kind === 'message')).toEqual([{ kind: 'message', transactional: true, prefix: '_bemi', content: '["postgres", "postgres"]\n{"userId":1}' }]);
      expect(tx.events[0].kind).toBe('message');
      expect(tx.events.filter((e) => e.kind === 'change')).toHaveLength(100);
    });

    it('only reads a comment that starts the query text', async () => {
      await db.query(`INSERT INTO todo (task) VALUES ('/*Bemi {"userId":1} Bemi*/')`);
      await db.query(` /*Bemi {"userId":2} Bemi*/ INSERT INTO todo (task) VALUES ('leading space')`);
      await db.query(`INSERT INTO todo (task) VALUES ('x') /*Bemi {"userId":3} Bemi*/`);
      const events = (await wal.read()).flatMap((t) => t.events);
      // each transaction says who ran it, and that it had no context
      expect(events.filter((e) => e.kind === 'message').map((e) => (e as { content: string }).content)).toEqual(Array(3).fill('["postgres", "postgres"]\n'));
      expect(events.filter((e) => e.kind === 'change')).toHaveLength(3);
    });

    it('attributes statements of one transaction separately: X, Y, then none', async () => {
      await withClient(db.url, async (c) => {
        await c.query('BEGIN');
        await c.query(`/*Bemi {"who":"X"} Bemi*/ INSERT INTO todo (task) VALUES ('a'), ('a2')`);
        await c.query(`/*Bemi {"who":"Y"} Bemi*/ UPDATE todo SET task = 'b' WHERE task = 'a2'`);
        await c.query(`DELETE FROM todo WHERE task = 'b'`);
        await c.query(`INSERT INTO "UpperCase" VALUES (1)`);
        await c.query('COMMIT');
      });
      const [tx] = await wal.read();
      // the reset (no context) is emitted once, by the first statement without context
      const r = '["postgres", "postgres"]\n';
      expect(tx.events.filter((e) => e.kind === 'message').map((e) => (e as { content: string }).content)).toEqual([`${r}{"who":"X"}`, `${r}{"who":"Y"}`, r]);
      const changes = attribute([tx]);
      expect(changes.map((c) => [c.operation, c.table, c.context])).toEqual([
        ['INSERT', 'public.todo', { who: 'X' }],
        ['INSERT', 'public.todo', { who: 'X' }],
        ['UPDATE', 'public.todo', { who: 'Y' }],
        ['DELETE', 'public.todo', null],
        ['INSERT', 'public."UpperCase"', null],
      ]);
    });

    it('gives TRUNCATE its context', async () => {
      await db.query(`/*Bemi {"job":"wipe"} Bemi*/ TRUNCATE todo, "UpperCase"`);
      // test_decoding prints one TRUNCATE line for all tables of the statement
      const changes = await wal.readChanges();
      expect(changes.map((c) => [c.operation, c.table, c.context])).toEqual([['TRUNCATE', 'public.todo, public."UpperCase"', { job: 'wipe' }]]);
    });

    it('leaves nothing in the WAL for a rolled-back transaction', async () => {
      await db.query(`BEGIN; /*Bemi {"userId":1} Bemi*/ INSERT INTO todo (task) VALUES ('x'); ROLLBACK;`);
      await db.query(`INSERT INTO "UpperCase" VALUES (5)`);
      const txs = await wal.read();
      expect(txs).toHaveLength(1);
      expect(txs[0].events).toEqual([expect.objectContaining({ kind: 'message', content: '["postgres", "postgres"]\n' }), expect.objectContaining({ kind: 'change', table: 'public."UpperCase"' })]);
    });

    it('names the role the session acts as (SET ROLE) and the role that logged in, once per transaction and role', async () => {
      const role = `${db.name}_acting`;
      await db.query(`CREATE ROLE ${role}; GRANT ALL ON todo, todo_id_seq TO ${role}`);
      try {
        await withClient(db.url, async (c) => {
          await c.query('BEGIN');
          await c.query(`INSERT INTO todo (task) VALUES ('a')`);
          await c.query(`INSERT INTO todo (task) VALUES ('b')`);
          await c.query(`SET LOCAL ROLE ${role}`);
          await c.query(`INSERT INTO todo (task) VALUES ('c')`);
          await c.query(`/*Bemi {"userId":9} Bemi*/ INSERT INTO todo (task) VALUES ('d')`);
          await c.query('COMMIT');
        });
        const changes = await wal.readChanges();
        expect(changes.map((c) => [c.roles, c.context])).toEqual([
          [['postgres', 'postgres'], null],
          [['postgres', 'postgres'], null],
          [[role, 'postgres'], null],
          [[role, 'postgres'], { userId: 9 }],
        ]);
      } finally {
        await db.query(`DROP OWNED BY ${role}; DROP ROLE ${role}`);
      }
    });

    it('runs as its owner with a fixed search_path, so a caller cannot intercept what it calls', async () => {
      const [fn] = await db.query<{ prosecdef: boolean; proconfig: string[] }>(`SELECT prosecdef, proconfig FROM pg_proc WHERE proname = $1`, [O.emitFunction]);
      expect(fn).toEqual({ prosecdef: true, proconfig: ['search_path=pg_catalog, pg_temp'] });
    });
  });

  describe('who may emit context', () => {
    const grantees = (db: TestDatabase) =>
      db.query<{ proc: string; public: boolean }>(
        `SELECT p.oid::regprocedure::text AS proc,
                EXISTS (SELECT 1 FROM aclexplode(COALESCE(p.proacl, acldefault('f', p.proowner))) a WHERE a.grantee = 0 AND a.privilege_type = 'EXECUTE') AS public
         FROM pg_proc p WHERE p.proname = 'pg_logical_emit_message' ORDER BY 1`,
      );

    afterEach(() => db.query(bemiMigrationSql().down));

    it('takes pg_logical_emit_message away from PUBLIC (every overload) and gives it back on down', async () => {
      expect((await grantees(db)).every((g) => g.public)).toBe(true);
      await db.query(bemiMigrationSql().up);
      const revoked = await grantees(db);
      expect(revoked.length).toBeGreaterThanOrEqual(2);
      expect(revoked.some((g) => g.public)).toBe(false);
      await db.query(bemiMigrationSql().down);
      expect((await grantees(db)).every((g) => g.public)).toBe(true);
      await db.query(bemiMigrationSql().up); // afterEach runs down
    });

    it('leaves a role that may write but not emit with working writes, and unable to forge a message', async () => {
      await db.query(bemiMigrationSql().up);
      const role = `${db.name}_writer`;
      await db.query(`CREATE ROLE ${role} LOGIN PASSWORD 'pw'; GRANT ALL ON todo, todo_id_seq TO ${role}`);
      const url = new URL(db.url);
      url.username = role;
      url.password = 'pw';
      const wal = await WalReader.create(db.url);
      try {
        await withClient(url.toString(), async (c) => {
          await c.query(`/*Bemi {"userId":"admin"} Bemi*/ INSERT INTO todo (task) VALUES ('x')`);
          await expect(c.query(`SELECT pg_logical_emit_message(true, '_bemi', '{"userId":"admin"}')`)).rejects.toMatchObject({ code: '42501' });
        });
        const [change] = await wal.readChanges();
        // the statement's context is kept, with the role that sent it: capture decides what to believe
        expect([change.roles, change.context]).toEqual([[role, role], { userId: 'admin' }]);
      } finally {
        await wal.close();
        await db.query(`DROP OWNED BY ${role}; DROP ROLE ${role}`);
      }
    });

    it('warns, with the statement to run, when the role may not revoke it; and refuses to install a trigger that could not emit', async () => {
      const role = `${db.name}_owner`;
      await db.query(`CREATE ROLE ${role} LOGIN PASSWORD 'pw'; ALTER SCHEMA public OWNER TO ${role}; ALTER TABLE todo OWNER TO ${role};
        ALTER TABLE "UpperCase" OWNER TO ${role}; ALTER TABLE "with-dash" OWNER TO ${role}; ALTER TABLE "with space" OWNER TO ${role};
        ALTER TABLE "with""quote" OWNER TO ${role}; ALTER TABLE parted OWNER TO ${role}; ALTER TABLE parted_2024 OWNER TO ${role};`);
      const url = new URL(db.url);
      url.username = role;
      url.password = 'pw';
      const notices: { message?: string; hint?: string; severity?: string }[] = [];
      try {
        await withClient(url.toString(), async (c) => {
          c.on('notice', (n) => notices.push(n));
          await c.query(bemiMigrationSql().up);
        });
        const warning = notices.find((n) => n.severity === 'WARNING' && /may not revoke EXECUTE on pg_logical_emit_message/.test(n.message ?? ''));
        expect(warning?.hint).toMatch(/^Have a superuser run: (REVOKE EXECUTE ON FUNCTION pg_logical_emit_message\(boolean,text,(text|bytea)(,boolean)?\) FROM PUBLIC; ?){2,}$/);
        expect((await grantees(db)).every((g) => g.public)).toBe(true);
        // once PUBLIC may not emit, this role's trigger could not: the migration says so instead of breaking writes
        for (const { proc } of await grantees(db)) await db.query(`REVOKE EXECUTE ON FUNCTION ${proc} FROM PUBLIC`);
        await withClient(url.toString(), async (c) => {
          await expect(c.query(bemiMigrationSql().up)).rejects.toMatchObject({ message: expect.stringMatching(/may not execute pg_logical_emit_message/), hint: expect.stringMatching(/^Run this migration as a superuser, or first: GRANT EXECUTE ON FUNCTION/) });
        });
      } finally {
        await db.query(`REASSIGN OWNED BY ${role} TO postgres; DROP OWNED BY ${role}`);
        await db.query(`DROP ROLE ${role}`);
      }
    });
  });
});
