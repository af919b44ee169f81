import { createChangesTable } from '../../support/changes-table';
import { createTestDatabase, urlFor, withClient, type TestDatabase } from '../../support/database';
import { seedChanges, series } from '../../retention/support';
import { cli } from '../support/run-cli';

const OUTSIDER = `bemi_guard_outsider_${Math.random().toString(36).slice(2, 8)}`;

describe('nestjs-bemi trail:guard', () => {
  let db: TestDatabase;
  const guarded = async () => (await db.query(`SELECT count(*)::int AS n FROM pg_trigger WHERE tgrelid = 'public.changes'::regclass AND tgname = '_bemi_changes_guard'`))[0].n === 1;

  beforeAll(async () => {
    db = await createTestDatabase('trail_guard_cli');
    await createChangesTable(db);
    await seedChanges(db, series('todo', 2, '2025-12-01T00:00:00Z'));
    await db.query(`CREATE ROLE ${OUTSIDER} LOGIN PASSWORD 'pw'`);
  });

  afterAll(async () => {
    await db?.drop();
    await withClient(urlFor('postgres'), (c) => c.query(`DROP ROLE IF EXISTS ${OUTSIDER}`));
  });

  it('is listed in --help and has its own --help', async () => {
    expect((await cli('--help')).stdout).toMatch(/^ {2}trail:guard {2,}Refuse UPDATE, DELETE and TRUNCATE/m);
    const help = await cli('trail:guard', '--help');
    expect(help).toMatchObject({ code: 0, stderr: '' });
    for (const option of ['--remove', '--schema', '--database-url', '--dry-run']) expect(help.stdout).toContain(option);
  });

  it.each([
    [['--schema', ''], /^nestjs-bemi trail:guard: --schema needs a non-empty value\n$/],
    [['--owner', 'x'], /^nestjs-bemi trail:guard: unknown option --owner\n$/],
  ])('%j exits 2 with a one-line reason', async (argv, reason) => {
    const result = await cli('trail:guard', ...argv, '--database-url', db.url);
    expect(result).toMatchObject({ code: 2, stdout: '' });
    expect(result.stderr).toMatch(reason);
  });

  it('--dry-run prints the SQL and changes nothing', async () => {
    const result = await cli('trail:guard', '--dry-run', '--database-url', db.url);
    expect(result).toMatchObject({ code: 0, stderr: '' });
    expect(result.stdout).toMatch(/^BEGIN;\n-- nestjs-bemi: changes is append-only outside retention \(up\)\n[^]*\nCOMMIT;\n-- Dry run: nothing was run\./);
    expect(await guarded()).toBe(false);
  });

  it('says when the trail is not there yet (exit 1)', async () => {
    const result = await cli('trail:guard', '--schema', 'audit', '--database-url', db.url);
    expect(result.code).toBe(1);
    expect(result.stderr).toMatch(/^nestjs-bemi trail:guard: the trail tables are not there yet \(no audit\.changes\)\. Start the capture worker once .* pass --schema\.\n$/);
  });

  it("says who must run it when the connecting role does not own the trail (42501, exit 1)", async () => {
    const url = new URL(db.url);
    url.username = OUTSIDER;
    url.password = 'pw';
    const result = await cli('trail:guard', '--database-url', url.toString());
    expect(result.code).toBe(1);
    expect(result.stderr).toMatch(new RegExp(`^nestjs-bemi trail:guard: the connecting role "${OUTSIDER}" may not add the guard to public\\.changes \\(PostgreSQL: [^)]+\\)\\. Run trail:guard as the trail's owner "postgres" \\(the capture role, in the separated layout\\) or as a superuser; nothing was changed\\.\\n$`));
    expect(await guarded()).toBe(false);
  });

  it('installs the guard (twice: idempotent); DELETE is then refused, saying why', async () => {
    const first = await cli('trail:guard', '--database-url', db.url);
    expect(first).toMatchObject({ code: 0, stderr: '' });
    expect(first.stdout).toMatch(/^Installed the append-only guard on public\.changes: UPDATE, DELETE and TRUNCATE of it are refused outside retention\./);
    const second = await cli('trail:guard', '--database-url', db.url);
    expect(second.stdout).toMatch(/^The append-only guard was already on public\.changes \(its function is refreshed\): /);
    await expect(db.query(`DELETE FROM changes`)).rejects.toThrow('nestjs-bemi: DELETE of public.changes is refused: the audit trail is append-only');
  });

  it('--remove takes it away (and says so when there is none)', async () => {
    expect(await cli('trail:guard', '--remove', '--database-url', db.url)).toEqual({ code: 0, stdout: 'Removed the append-only guard from public.changes.\n', stderr: '' });
    expect(await cli('trail:guard', '--remove', '--database-url', db.url)).toEqual({ code: 0, stdout: 'No append-only guard on public.changes: nothing to remove.\n', stderr: '' });
    expect(await guarded()).toBe(false);
  });
});
