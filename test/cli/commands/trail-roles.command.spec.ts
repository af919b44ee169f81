import { bemiChangesPartitionSql } from '../../../lib/trail/changes-table';
import { createChangesTable } from '../../support/changes-table';
import { createTestDatabase, urlFor, withClient, type TestDatabase } from '../../support/database';
import { seedChanges, series } from '../../retention/support';
import { cli, type CliResult } from '../support/run-cli';

/** Runs `fn` with DATABASE_URL set to `value` (or unset), restoring it after. */
async function withDatabaseUrl<T>(value: string | undefined, fn: () => Promise<T>): Promise<T> {
  const saved = process.env.DATABASE_URL;
  if (value === undefined) delete process.env.DATABASE_URL;
  else process.env.DATABASE_URL = value;
  try {
    return await fn();
  } finally {
    if (saved === undefined) delete process.env.DATABASE_URL;
    else process.env.DATABASE_URL = saved;
  }
}

const suffix = Math.random().toString(36).slice(2, 8);
const OWNER = `bemi_cap_${suffix}`;
const READER = `bemi_app_${suffix}`;
const READER2 = `bemi_app2_${suffix}`;
/** Neither superuser nor member of any trail role: may not hand the trail over. */
const OUTSIDER = `bemi_outsider_${suffix}`;
const ROLES = [OWNER, READER, READER2, OUTSIDER];

describe('nestjs-bemi trail:roles', () => {
  it('is listed in --help and has its own --help', async () => {
    expect((await cli('--help')).stdout).toMatch(/^ {2}trail:roles {2,}Give the trail to the capture role/m);
    const help = await cli('trail:roles', '--help');
    expect(help).toMatchObject({ code: 0, stderr: '' });
    for (const option of ['--owner', '--reader', '--schema', '--database-url', '--dry-run']) expect(help.stdout).toContain(option);
  });

  it.each([
    [[], /^nestjs-bemi trail:roles: --owner is required: the role capture and retention connect as, e\.g\. --owner bemi_capture\n$/],
    [['--owner', 'cap'], /^nestjs-bemi trail:roles: --reader is required: the role the application connects as, e\.g\. --reader app \(repeat for several\)\n$/],
    [['--owner', 'cap', '--reader', 'app', '--reader', 'cap'], /^nestjs-bemi trail:roles: "cap" is both --owner and --reader; a reader must not own the trail/],
    [['--owner', '', '--reader', 'app'], /^nestjs-bemi trail:roles: --owner needs a role name of 1 to 63 characters, got ""\n$/],
    [['--owner', 'cap', '--reader', 'x'.repeat(64)], /^nestjs-bemi trail:roles: --reader needs a role name of 1 to 63 characters/],
    [['--owner', 'cap', '--reader', 'app', '--schema', ' '], /^nestjs-bemi trail:roles: --schema needs a non-empty value\n$/],
    [['--owner', 'cap', '--reader', 'app', '--guard'], /^nestjs-bemi trail:roles: unknown option --guard\n$/],
    [['--owner', 'cap', 'app'], /^nestjs-bemi trail:roles: unexpected argument "app" \(options take the form --name value\)\n$/],
  ])('%j exits 2 with a one-line reason', async (argv, reason) => {
    const result = await withDatabaseUrl('postgres://nowhere.invalid/x', () => cli('trail:roles', ...argv));
    expect(result).toMatchObject({ code: 2, stdout: '' });
    expect(result.stderr).toMatch(reason);
  });

  it('needs a database: --database-url or DATABASE_URL', async () => {
    expect(await withDatabaseUrl(undefined, () => cli('trail:roles', '--owner', 'cap', '--reader', 'app'))).toEqual({
      code: 2,
      stdout: '',
      stderr: 'nestjs-bemi trail:roles: --database-url is required (or set DATABASE_URL)\n',
    });
  });

  it('--dry-run prints the SQL in one transaction and connects to nothing', async () => {
    const result = await withDatabaseUrl('postgres://nowhere.invalid/x', () => cli('trail:roles', '--owner', 'cap', '--reader', 'app', '--dry-run'));
    expect(result).toMatchObject({ code: 0, stderr: '' });
    expect(result.stdout).toMatch(/^BEGIN;\n-- nestjs-bemi: the trail owned by cap, read-only for app\nDO \$bemi\$/);
    expect(result.stdout).toMatch(/\nCOMMIT;\n-- Dry run: nothing was run\./);
  });

  describe('against a database with a partitioned trail', () => {
    let db: TestDatabase;

    const as = (role: string) => {
      const url = new URL(db.url);
      url.username = role;
      url.password = 'pw';
      return url.toString();
    };
    const owners = () =>
      db.query<{ table: string; owner: string }>(
        `SELECT c.relname AS table, pg_get_userbyid(c.relowner) AS owner FROM pg_class c
          WHERE c.relnamespace = 'public'::regnamespace AND c.relkind IN ('r', 'p') AND (c.relname LIKE 'changes%' OR c.relname LIKE '\\_bemi\\_%') ORDER BY 1`,
      );

    beforeAll(async () => {
      db = await createTestDatabase('trail_roles_cli');
      await createChangesTable(db, { partitionByMonth: true });
      await db.query(bemiChangesPartitionSql('2025-12'));
      await seedChanges(db, series('todo', 3, '2025-12-01T00:00:00Z'));
      await db.query(ROLES.map((r) => `CREATE ROLE ${r} LOGIN PASSWORD 'pw';`).join('\n'));
      // The default wiring: the application's role may do anything to the trail.
      await db.query(`GRANT ALL ON ALL TABLES IN SCHEMA public TO ${READER}`);
    });

    afterAll(async () => {
      await db?.drop();
      await withClient(urlFor('postgres'), (c) => c.query(ROLES.map((r) => `DROP ROLE IF EXISTS ${r};`).join('\n')));
    });

    it('--dry-run changes nothing', async () => {
      const before = await owners();
      const result = await cli('trail:roles', '--owner', OWNER, '--reader', READER, '--dry-run', '--database-url', db.url);
      expect(result.code).toBe(0);
      expect(await owners()).toEqual(before);
      expect(before.every((t) => t.owner === 'postgres')).toBe(true);
    });

    it('names a role that does not exist, the flag it came from and how to create it (exit 1)', async () => {
      const result = await cli('trail:roles', '--owner', `nobody_${suffix}`, '--reader', READER, '--database-url', db.url);
      expect(result).toEqual({
        code: 1,
        stdout: '',
        stderr: `nestjs-bemi trail:roles: role "nobody_${suffix}" (--owner) does not exist. Create it first (CREATE ROLE "nobody_${suffix}" LOGIN REPLICATION PASSWORD '...') or fix the flag; nothing was changed.\n`,
      });
      const readers = await cli('trail:roles', '--owner', OWNER, '--reader', `ghost_${suffix}`, '--reader', `ghost2_${suffix}`, '--database-url', db.url);
      expect(readers.code).toBe(1);
      expect(readers.stderr).toMatch(new RegExp(`^nestjs-bemi trail:roles: role "ghost_${suffix}" \\(--reader\\), role "ghost2_${suffix}" \\(--reader\\) do not exist\\. Create them first \\(CREATE ROLE "ghost_${suffix}" LOGIN PASSWORD '\\.\\.\\.', and so on\\)`));
    });

    it('says when the trail tables are not there yet (exit 1)', async () => {
      const result = await cli('trail:roles', '--owner', OWNER, '--reader', READER, '--schema', 'audit', '--database-url', db.url);
      expect(result).toEqual({
        code: 1,
        stdout: '',
        stderr:
          'nestjs-bemi trail:roles: the trail tables are not there yet (no audit.changes, audit._bemi_capture_state, audit._bemi_schema_log, audit._bemi_retention_horizon, audit._bemi_chain_anchor). ' +
          'Start the capture worker once (npx nestjs-bemi capture, or capture: {} in BemiModule.forRoot(); it creates them) or run the changes-table migration (bemiChangesTableSql().up) first, then run this again; ' +
          'if the trail is in another schema than "audit", pass --schema.\n',
      });
    });

    it('says who must run it when the connecting role lacks the rights (42501, exit 1)', async () => {
      const result = await cli('trail:roles', '--owner', OWNER, '--reader', READER, '--database-url', as(OUTSIDER));
      expect(result.code).toBe(1);
      const [said, fix] = result.stderr.split(/ \(PostgreSQL: must be owner of table \w+\)\. /);
      expect(said).toBe(`nestjs-bemi trail:roles: the connecting role "${OUTSIDER}" may not hand the trail to "${OWNER}"`);
      expect(fix).toBe(`Run trail:roles as a superuser, or as a member of both the trail's current owner "postgres" and --owner "${OWNER}" (GRANT "postgres", "${OWNER}" TO "${OUTSIDER}"); nothing was changed.\n`);
      expect((await owners()).every((t) => t.owner === 'postgres')).toBe(true);
    });

    it('refuses a reader that is a member of the owner (exit 1)', async () => {
      await db.query(`GRANT ${OWNER} TO ${READER2}`);
      try {
        const result = await cli('trail:roles', '--owner', OWNER, '--reader', READER2, '--database-url', db.url);
        expect(result.code).toBe(1);
        expect(result.stderr).toMatch(new RegExp(`^nestjs-bemi trail:roles: --reader ${READER2} is a superuser or a member of the owner ${OWNER}: it could change the trail\\. Use a reader that is neither \\(REVOKE ${OWNER} FROM ${READER2};`));
      } finally {
        await db.query(`REVOKE ${OWNER} FROM ${READER2}`);
      }
    });

    describe('run (twice: idempotent)', () => {
      let runs: CliResult[];

      beforeAll(async () => {
        runs = [];
        for (let i = 0; i < 2; i++) runs.push(await withDatabaseUrl(db.url, () => cli('trail:roles', '--owner', OWNER, '--reader', READER, '--reader', READER2)));
      });

      it('prints what it did, the same both times', () => {
        expect(runs[0]).toEqual(runs[1]);
        expect(runs[0]).toEqual({
          code: 0,
          stderr: '',
          stdout:
            `The trail in schema "public" is owned by "${OWNER}" and read-only for "${READER}", "${READER2}" (SELECT and USAGE on the schema; every other privilege of theirs and of PUBLIC revoked), in one transaction: 7 table(s).\n` +
            ['changes (partitioned)', 'changes_2025_12', 'changes_default', '_bemi_capture_state', '_bemi_schema_log', '_bemi_retention_horizon', '_bemi_chain_anchor'].map((t) => `  public.${t}\n`).join(''),
        });
      });

      it('gives every trail table, partitions included, to the owner', async () => {
        expect((await owners()).map((t) => t.owner)).toEqual(Array(7).fill(OWNER));
      });

      it.each([
        ['UPDATE', `UPDATE changes SET context = '{"userId":"admin"}'`],
        ['DELETE', `DELETE FROM changes`],
        ['DELETE of a partition', `DELETE FROM changes_2025_12`],
        ['TRUNCATE', `TRUNCATE changes`],
        [
          'INSERT',
          `INSERT INTO changes (database, schema, "table", operation, committed_at, queued_at, transaction_id, position, commit_position, seq)
             VALUES ('d', 'public', 'todo', 'CREATE', now(), now(), 1, 1, 1, 0)`,
        ],
      ])('refuses the reader %s (42501)', async (_, sql) => {
        await expect(withClient(as(READER), (c) => c.query(sql))).rejects.toMatchObject({ code: '42501' });
      });

      it('lets the readers SELECT', async () => {
        for (const reader of [READER, READER2]) {
          const { rows } = await withClient(as(reader), (c) => c.query(`SELECT count(*)::int AS n FROM changes`));
          expect(rows).toEqual([{ n: 3 }]);
        }
      });
    });

    it('warns when a reader owns the schema of the trail (it may drop its tables)', async () => {
      await db.query(`CREATE SCHEMA audit AUTHORIZATION ${READER2}`);
      await createChangesTable(db, { schema: 'audit' });
      const result = await cli('trail:roles', '--owner', OWNER, '--reader', READER2, '--schema', 'audit', '--database-url', db.url);
      expect(result.code).toBe(0);
      expect(result.stderr).toBe(
        `nestjs-bemi trail:roles: WARNING reader ${READER2} owns schema audit, so it may still drop the trail tables. Give the schema to another role (ALTER SCHEMA ... OWNER TO ...), or keep the trail in a schema of its own.\n`,
      );
    });
  });
});
