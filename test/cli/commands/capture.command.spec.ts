import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { runCaptureCommand } from '../../../lib/cli/commands/capture.command';
import { runCli } from '../../../lib/cli/main';
import { createTestDatabase, type TestDatabase } from '../../support/database';
import { installTriggers, syncCapture, uniqueSlot, waitFor } from '../../capture/support/capture-helpers';
import { MemoryIo, processOutputDuring } from '../support/memory-io';
import { withEnv } from '../../support/env';

const DEPRECATED = /--source is deprecated; use --database-url/g;

describe('nestjs-bemi capture', () => {
  let empty: TestDatabase;

  beforeAll(async () => {
    empty = await createTestDatabase('capture_cli');
  });

  afterAll(() => empty.drop());

  it('help, bad arguments, and --no-create-table on a database without changes', async () => {
    const io = new MemoryIo();
    expect(await runCaptureCommand(['--help'], io)).toBe(0);
    expect(io.stdout).toContain('Usage: nestjs-bemi capture --database-url <url>');
    expect(await runCaptureCommand(['--database-url', empty.url, '--batch-size', 'many'], io)).toBe(2);
    expect(io.stderr).toContain('--batch-size must be a whole number, got "many".');
    const slot = uniqueSlot();
    expect(await runCaptureCommand(['--database-url', empty.url, '--no-create-table', '--slot', slot, '--publication', slot], io)).toBe(1);
    expect(io.stderr).toMatch(/could not start: The destination has no public\.changes/);
    expect(io.stderr).not.toMatch(DEPRECATED);
  });

  it.each([
    [['--bogus'], 'unknown option --bogus'],
    [['--slot'], '--slot <value> argument missing'],
    [['postgres://x'], 'unexpected argument "postgres://x" (options take the form --name value)'],
  ])('%j: exits 2 with a one-line reason in the words of every command, then the help', async (argv, reason) => {
    const io = new MemoryIo();
    expect(await runCaptureCommand(argv, io)).toBe(2);
    expect(io.stderr.startsWith(`nestjs-bemi capture: ${reason}\n\nUsage: nestjs-bemi capture`)).toBe(true);
  });

  it('is run by the bin with its io', async () => {
    const io = new MemoryIo();
    expect(await runCli(['capture', '--help'], io)).toBe(0);
    expect(io.stdout).toContain('--database-url <url>');
    expect(io.stdout).toContain('--destination <url>');
  });

  it('takes the tracked database from --database-url, then $BEMI_CAPTURE_SOURCE, then $DATABASE_URL', async () => {
    await withEnv({ BEMI_CAPTURE_SOURCE: undefined, DATABASE_URL: undefined }, async () => {
      const missing = new MemoryIo();
      expect(await runCaptureCommand([], missing)).toBe(2);
      expect(missing.stderr).toContain('--database-url is required (or set BEMI_CAPTURE_SOURCE / DATABASE_URL).');
    });
    await withEnv({ BEMI_CAPTURE_SOURCE: undefined, DATABASE_URL: empty.url }, async () => {
      const fromEnv = new MemoryIo();
      const slot = uniqueSlot();
      expect(await runCaptureCommand(['--no-create-table', '--slot', slot, '--publication', slot], fromEnv)).toBe(1);
      expect(fromEnv.stderr).toMatch(/could not start: The destination has no public\.changes/);
    });
  });

  it('still accepts --source, the deprecated name of --database-url, with one warning on stderr', async () => {
    const io = new MemoryIo();
    const slot = uniqueSlot();
    // It connects to the database --source names: that one has no "changes" table.
    expect(await runCaptureCommand(['--source', empty.url, '--no-create-table', '--slot', slot, '--publication', slot], io)).toBe(1);
    expect(io.stderr.match(DEPRECATED)).toHaveLength(1);
    expect(io.stderr).toContain('nestjs-bemi capture: --source is deprecated; use --database-url (same meaning)');
    expect(io.stderr).toMatch(/could not start: The destination has no public\.changes/);
    expect(io.stdout).toBe('');

    const both = new MemoryIo();
    expect(await runCaptureCommand(['--source', empty.url, '--database-url', empty.url], both)).toBe(2);
    expect(both.stderr).toContain('--source is the deprecated name of --database-url; pass only --database-url');
  });

  describe('streaming', () => {
    let db: TestDatabase;

    beforeAll(async () => {
      db = await createTestDatabase('capture_cli_io');
      await db.query(`CREATE TABLE todo (id int PRIMARY KEY, title text); CREATE TABLE keyless (v text)`);
      await installTriggers(db);
    });

    afterAll(() => db.drop());

    it('writes every line, the worker logger included, through the given io and none to the process', async () => {
      const io = new MemoryIo();
      const slot = uniqueSlot();
      const before = new Set(process.listeners('SIGTERM'));
      const { result, written } = await processOutputDuring(async () => {
        const run = runCaptureCommand(['--database-url', db.url, '--slot', slot, '--publication', slot, '--progress-interval', '0', '--trusted-roles', 'jobs, ops'], io);
        try {
          await waitFor(() => io.stdout.includes('Streaming (slot'), 'capture to start');
          await db.query(`/*Bemi {"userId":1} Bemi*/ INSERT INTO todo VALUES (1, 'a')`);
          await syncCapture(db);
        } finally {
          // What SIGTERM runs, without sending it to the test process.
          for (const listener of process.listeners('SIGTERM').filter((l) => !before.has(l))) (listener as (signal: string) => void)('SIGTERM');
        }
        return run;
      });
      try {
        expect(result).toBe(0);
        // --trusted-roles: postgres, which wrote it, is not one of them
        expect(await db.query(`SELECT operation, context, role FROM changes WHERE "table" = 'todo'`)).toEqual([
          { operation: 'CREATE', context: { _bemi: { untrusted: 'role "postgres" is not trusted', context: { userId: 1 } } }, role: 'postgres' },
        ]);
        expect(io.stdout).toMatch(/\[capture\] Context is believed from role\(s\) "jobs", "ops"; /);
        expect(io.stdout).toMatch(/^\S+Z \[capture\] Streaming \(slot "bemi_test_\w+"\)\. Stop with SIGTERM or Ctrl-C\.$/m);
        expect(io.stdout).toMatch(/\[capture\] SIGTERM received: storing and acknowledging/);
        expect(io.stdout).toMatch(/\[capture\] Stopped at [0-9A-F]+\/[0-9A-F]+ after \d+ changes\./);
        // The worker's own warnings go to io.err.
        expect(io.stderr).toMatch(/\[capture\] WARN .*without a primary key get primary_key NULL: public\.keyless/);
        expect(written).not.toMatch(/\[capture\]/);
        expect(process.listeners('SIGINT').filter((l) => !before.has(l))).toEqual([]);
      } finally {
        await db.query(`SELECT pg_drop_replication_slot($1) FROM pg_replication_slots WHERE slot_name = $1`, [slot]);
      }
    });
  });
});

describe('nestjs-bemi capture --rules', () => {
  const dir = mkdtempSync(join(tmpdir(), 'bemi-rules-'));

  const file = (name: string, text: string) => {
    const path = join(dir, name);
    writeFileSync(path, text);
    return path;
  };

  it('refuses a rules file that is not JSON, before connecting anywhere', async () => {
    const io = new MemoryIo();
    const path = file('broken.json', '{ tables: ');
    expect(await runCaptureCommand(['--database-url', 'postgres://nowhere.invalid/db', '--rules', path], io)).toBe(2);
    expect(io.stderr).toContain(`--rules ${path}: cannot read it as JSON`);
  });

  it('refuses wrong rules, naming the option and the fix', async () => {
    const io = new MemoryIo();
    const path = file('wrong.json', JSON.stringify({ tables: { users: { redact: { password: 'hmac' } } } }));
    const before = process.env.BEMI_HMAC_KEY;
    delete process.env.BEMI_HMAC_KEY;
    try {
      expect(await runCaptureCommand(['--database-url', 'postgres://nowhere.invalid/db', '--rules', path], io)).toBe(2);
    } finally {
      if (before !== undefined) process.env.BEMI_HMAC_KEY = before;
    }
    expect(io.stderr).toMatch(/"rules.hmacKey" is required: column "password" of users is redacted with "hmac"\. Set rules.hmacKey/);
  });
});
