import { createTestDatabase, type TestDatabase } from '../../support/database';
import { createChangesTable } from '../../support/changes-table';
import { seedChanges, series } from '../../retention/support';
import { links, relinkFrom } from '../../history/chain-tampering';
import { cli, bin } from '../support/run-cli';

const KEY = 'cli-chain-key-0123456789abcdef';

describe('nestjs-bemi verify', () => {
  it('is listed in --help and has its own --help', async () => {
    expect((await cli('--help')).stdout).toMatch(/^ {2}verify {2,}Check the trail's hash chain/m);
    const help = await cli('verify', '--help');
    expect(help).toMatchObject({ code: 0, stderr: '' });
    for (const option of ['--database-url', '--schema', '--key', '--expect-head', '--page-size', '$BEMI_CHAIN_KEY']) expect(help.stdout).toContain(option);
  });

  it.each([
    [['--expect-head', 'db@1/2:abc'], /^nestjs-bemi verify: --expect-head: "db@1\/2:abc" is not a head; write it as verify prints it: <database>@<commit_position>\/<seq>:<64 hex digits>\n$/],
    [['--page-size', '0'], /^nestjs-bemi verify: --page-size must be a whole number from 1 to 100000, got "0"\n$/],
    [['--key', 'short'], /^nestjs-bemi verify: the chain key \(--key\) must have at least 16 characters, as capture's chain\.key\n$/],
    [['--bogus'], /^nestjs-bemi verify: unknown option --bogus\n$/],
    [['changes'], /^nestjs-bemi verify: unexpected argument "changes" \(options take the form --name value\)\n$/],
  ])('%j exits 2 with a one-line reason', async (argv, reason) => {
    const saved = process.env.DATABASE_URL;
    process.env.DATABASE_URL = 'postgres://nowhere.invalid/x';
    try {
      const result = await cli('verify', ...argv);
      expect(result).toMatchObject({ code: 2, stdout: '' });
      expect(result.stderr).toMatch(reason);
    } finally {
      if (saved === undefined) delete process.env.DATABASE_URL;
      else process.env.DATABASE_URL = saved;
    }
  });

  describe('against a database', () => {
    let db: TestDatabase;
    const relink = async (key?: string) => {
      const [first] = await links(db);
      await relinkFrom(db, 'changes', { commitPosition: first.commit_position, seq: first.seq }, key);
    };

    beforeAll(async () => {
      db = await createTestDatabase('verify_cli');
      await createChangesTable(db);
      await seedChanges(db, [...series('todo', 12, new Date().toISOString()), ...series('orders', 3, new Date().toISOString())]);
    });

    afterAll(() => db?.drop());

    it('needs a database: --database-url or DATABASE_URL', async () => {
      expect(await bin(['verify'])).toEqual({ code: 2, stdout: '', stderr: 'nestjs-bemi verify: --database-url is required (or set DATABASE_URL)\n' });
    });

    it('exits 1 and says so when the chain is not enabled', async () => {
      const result = await bin(['verify', '--database-url', db.url]);
      expect(result.code).toBe(1);
      expect(result.stderr).toMatch(/^nestjs-bemi verify: No change in public\.changes carries a chain hash: the chain is not enabled\./);
    });

    it('exits 0 on an intact chain and prints its head, which --expect-head then checks', async () => {
      await relink();
      const result = await bin(['verify', '--page-size', '4'], { DATABASE_URL: db.url });
      expect(result).toMatchObject({ code: 0, stderr: '' });
      expect(result.stdout).toMatch(/^Chain intact \(SHA-256, unkeyed\): 15 change\(s\) read: 15 chained, 0 from before the chain began, 0 unverifiable \(before a retention anchor\)\.$/m);
      const head = /^Head: (.+)$/m.exec(result.stdout)![1];
      const last = (await links(db)).at(-1)!;
      expect(head).toBe(`${db.name}@${last.commit_position}/${last.seq}:${last.hash}`);
      expect((await bin(['verify', '--database-url', db.url, '--expect-head', head])).code).toBe(0);
      // The last change cut: only the kept head tells.
      await db.query(`DELETE FROM changes WHERE commit_position = $1 AND seq = $2`, [last.commit_position, last.seq]);
      expect((await bin(['verify', '--database-url', db.url])).code).toBe(0);
      const cut = await bin(['verify', '--database-url', db.url, '--expect-head', head]);
      expect(cut.code).toBe(1);
      expect(cut.stdout).toMatch(new RegExp(`^Chain BROKEN \\(deleted\\) at ${db.name}@${last.commit_position}/${last.seq}: the expected head .* is not in the trail`, 'm'));
    });

    it('exits 1 at the first broken link, naming it', async () => {
      const victim = (await links(db))[5];
      await db.query(`UPDATE changes SET after = '{"forged": true}' WHERE commit_position = $1 AND seq = $2`, [victim.commit_position, victim.seq]);
      const result = await bin(['verify', '--database-url', db.url]);
      expect(result.code).toBe(1);
      expect(result.stdout).toMatch(new RegExp(`^Chain BROKEN \\(edited\\) at ${db.name}@${victim.commit_position}/${victim.seq}: the change at ${victim.commit_position}/${victim.seq} does not match its hash`, 'm'));
    });

    it('keyed: the key from --key or $BEMI_CHAIN_KEY', async () => {
      await relink(KEY);
      expect((await bin(['verify', '--database-url', db.url])).code).toBe(1);
      expect((await bin(['verify', '--database-url', db.url, '--key', KEY])).code).toBe(0);
      const result = await bin(['verify', '--database-url', db.url], { BEMI_CHAIN_KEY: KEY });
      expect(result.code).toBe(0);
      expect(result.stdout).toMatch(/^Chain intact \(HMAC-SHA256, keyed\)/m);
    });
  });
});
