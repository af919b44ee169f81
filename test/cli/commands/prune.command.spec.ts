import { createTestDatabase, type TestDatabase } from '../../support/database';
import { createChangesTable } from '../../support/changes-table';
import { PRUNE_INDEX, seedChanges, series } from '../../retention/support';
import { cli, bin } from '../support/run-cli';

describe('nestjs-bemi prune', () => {
  it('is listed in --help and has its own --help', async () => {
    expect((await cli('--help')).stdout).toMatch(/^ {2}prune {2,}Delete changes older than a given age/m);
    const help = await cli('prune', '--help');
    expect(help).toMatchObject({ code: 0, stderr: '' });
    for (const option of ['--older-than', '--table', '--dry-run', '--batch-size', '--database-url', '--schema']) expect(help.stdout).toContain(option);
  });

  it.each([
    [[], /^nestjs-bemi prune: --older-than is required, e\.g\. --older-than 365d\n$/],
    [['--older-than', '1y'], /^nestjs-bemi prune: --older-than: "1y" is not a duration; write a whole number followed by s, m, h, d or w, e\.g\. 365d\n$/],
    [['--older-than', '1d', '--batch-size', '0'], /^nestjs-bemi prune: --batch-size must be a whole number from 1 to 100000, got "0"\n$/],
    [['--older-than', '1d', '--batch-size', 'many'], /^nestjs-bemi prune: --batch-size must be a whole number from 1 to 100000, got "many"\n$/],
    [['--older-than', '1d', '--bogus'], /^nestjs-bemi prune: unknown option --bogus\n$/],
    [['--older-than', '1d', 'orders'], /^nestjs-bemi prune: unexpected argument "orders" \(options take the form --name value\)\n$/],
    [['--older-than', '1d', '--table', ' , '], /^nestjs-bemi prune: --table needs a table name\n$/],
    [['--older-than'], /^nestjs-bemi prune: --older-than <value> argument missing\n$/],
  ])('%j exits 2 with a one-line reason', async (argv, reason) => {
    const saved = process.env.DATABASE_URL;
    process.env.DATABASE_URL = 'postgres://nowhere.invalid/x';
    try {
      const result = await cli('prune', ...argv);
      expect(result).toMatchObject({ code: 2, stdout: '' });
      expect(result.stderr).toMatch(reason);
    } finally {
      if (saved === undefined) delete process.env.DATABASE_URL;
      else process.env.DATABASE_URL = saved;
    }
  });

  describe('against a database (spawned bin)', () => {
    let db: TestDatabase;
    const old = new Date(Date.now() - 10 * 86_400_000).toISOString();
    const recent = new Date(Date.now() - 3_600_000).toISOString();

    beforeAll(async () => {
      db = await createTestDatabase('prune_cli');
      await createChangesTable(db);
      await db.query(PRUNE_INDEX);
      await seedChanges(db, [...series('todo', 25, old), ...series('orders', 4, old), ...series('todo', 3, recent)]);
    });

    afterAll(() => db?.drop());

    const counts = async () => db.query(`SELECT "table", count(*)::int AS n FROM changes GROUP BY 1 ORDER BY 1`);

    it('needs a database: --database-url or DATABASE_URL', async () => {
      expect(await bin(['prune', '--older-than', '1d'])).toEqual({ code: 2, stdout: '', stderr: 'nestjs-bemi prune: --database-url is required (or set DATABASE_URL)\n' });
    });

    it('--dry-run prints how many rows would go and deletes nothing', async () => {
      const result = await bin(['prune', '--older-than', '7d', '--dry-run'], { DATABASE_URL: db.url });
      expect(result.code).toBe(0);
      expect(result.stdout).toMatch(/\[prune\] Would prune 4 changes of "orders" committed before /);
      expect(result.stdout).toMatch(/\[prune\] Would prune 25 changes of "todo" committed before /);
      expect(result.stdout).toMatch(/Dry run: 29 changes older than 7d would be deleted; nothing was deleted\.\n$/);
      expect(await counts()).toEqual([
        { table: 'orders', n: 4 },
        { table: 'todo', n: 28 },
      ]);
    });

    it('--table limits pruning to that table; --batch-size bounds each batch (one line each)', async () => {
      const result = await bin(['prune', '--older-than', '7d', '--table', 'todo', '--batch-size', '10', '--database-url', db.url]);
      expect(result).toMatchObject({ code: 0, stderr: '' });
      const lines = result.stdout.trimEnd().split('\n');
      expect(lines.slice(0, 3).map((l) => /Pruned (\d+) changes of "todo"/.exec(l)?.[1])).toEqual(['10', '10', '5']);
      expect(lines[3]).toMatch(/^Deleted 25 changes older than 7d in 3 batch\(es\), \d+ ms\.$/);
      expect(await counts()).toEqual([
        { table: 'orders', n: 4 },
        { table: 'todo', n: 3 },
      ]);
    });

    it('exits 1 with a one-line reason when the database cannot be used', async () => {
      const result = await bin(['prune', '--older-than', '7d', '--schema', 'nope', '--database-url', db.url]);
      expect(result).toEqual({ code: 1, stdout: '', stderr: 'nestjs-bemi prune: No table "nope"."changes": check the schema and table options (capture "schema", history "table") or start capture once to create it.\n' });
    });
  });
});
