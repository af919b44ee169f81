import { schemaRecorderName } from '../../../lib/capture/schema-log.sql';
import { publisherName } from '../../../lib/capture/new-table-publisher';
import type { BemiCaptureWorker } from '../../../lib/capture/capture.worker';
import { runDropSlotCommand } from '../../../lib/cli/commands/capture-drop-slot.command';
import { createTestDatabase, type TestDatabase } from '../../support/database';
import { installTriggers, startWorker, uniqueSlot, waitFor } from '../../capture/support/capture-helpers';
import { MemoryIo, processOutputDuring } from '../support/memory-io';
import { withEnv } from '../../support/env';

describe('nestjs-bemi capture:drop-slot', () => {
  let db: TestDatabase;

  beforeAll(async () => {
    db = await createTestDatabase('capture_drop_slot');
    await db.query(`CREATE TABLE tracked (id int PRIMARY KEY, v text)`);
    await installTriggers(db);
  });

  afterAll(() => db.drop());

  it('drops the slot on purpose, and refuses while a worker uses it', async () => {
    let worker: BemiCaptureWorker | undefined;
    const io = new MemoryIo();
    try {
      const started = await startWorker(db);
      worker = started.worker;
      const args = ['--database-url', db.url, '--slot', started.slotName, '--publication', started.slotName];
      const { result: refused, written } = await processOutputDuring(() => runDropSlotCommand(args, io));
      expect(refused).toBe(1);
      expect(written).toBe('');
      expect(io.stderr).toContain(`Replication slot "${started.slotName}" is in use`);
      await worker.stop();
      await waitFor(async () => (await db.query(`SELECT 1 FROM pg_replication_slots WHERE slot_name = $1 AND active`, [started.slotName])).length === 0, 'release');
      expect(await runDropSlotCommand(args, io)).toBe(0);
      expect(await db.query(`SELECT 1 FROM pg_replication_slots WHERE slot_name = $1`, [started.slotName])).toEqual([]);
      expect(await db.query(`SELECT 1 FROM pg_publication WHERE pubname = $1`, [started.slotName])).toEqual([]);
      const shapes = schemaRecorderName(started.slotName);
      expect(await db.query(`SELECT evtname FROM pg_event_trigger WHERE evtname IN ($1, $2, $3)`, [publisherName(started.slotName), shapes, `${shapes}_drop`])).toEqual([]);
      expect(await db.query(`SELECT 1 FROM pg_proc WHERE proname = $1`, [shapes])).toEqual([]);
      expect(io.stdout).toContain(`Dropped replication slot "${started.slotName}"`);
      expect(await runDropSlotCommand(['--help'], io)).toBe(0);
      expect(io.stdout).toContain('Usage: nestjs-bemi capture:drop-slot --database-url <url>');
    } finally {
      await worker?.stop();
    }
  });

  it('still accepts --source, the deprecated name of --database-url, with one warning on stderr', async () => {
    const io = new MemoryIo();
    const slot = uniqueSlot();
    expect(await runDropSlotCommand(['--source', db.url, '--slot', slot, '--keep-publication'], io)).toBe(0);
    expect(io.stdout).toBe(`No replication slot "${slot}": nothing to drop.\n`);
    expect(io.stderr).toBe('nestjs-bemi capture:drop-slot: --source is deprecated; use --database-url (same meaning)\n');
  });

  it.each([
    [['--bogus'], 'unknown option --bogus'],
    [['--slot'], '--slot <value> argument missing'],
    [['my_slot'], 'unexpected argument "my_slot" (options take the form --name value)'],
  ])('%j: exits 2 with a one-line reason in the words of every command, then the help', async (argv, reason) => {
    const io = new MemoryIo();
    expect(await runDropSlotCommand(argv, io)).toBe(2);
    expect(io.stderr.startsWith(`nestjs-bemi capture:drop-slot: ${reason}\n\nUsage: nestjs-bemi capture:drop-slot`)).toBe(true);
  });

  it('needs a database', async () => {
    await withEnv({ BEMI_CAPTURE_SOURCE: undefined, DATABASE_URL: undefined }, async () => {
      const io = new MemoryIo();
      expect(await runDropSlotCommand([], io)).toBe(2);
      expect(io.stderr).toMatch(/^nestjs-bemi capture:drop-slot: --database-url is required \(or set BEMI_CAPTURE_SOURCE \/ DATABASE_URL\)\./);
    });
  });
});
