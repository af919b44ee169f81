import { BemiCaptureOptionsError, resolveCaptureOptions } from '../../lib/options/capture-options';
import { BemiCaptureWorker } from '../../lib/capture/capture.worker';
import { BemiCaptureSetupError, defaultSlotName } from '../../lib/capture/source-setup';
import { LEGACY_SLOT_NAME } from '../../lib/options/defaults';
import { runDropSlotCommand } from '../../lib/cli/commands/capture-drop-slot.command';
import { createTestDatabase, type TestDatabase } from '../support/database';
import { RecordingLogger } from '../support/recording-logger';
import { changesOf, installTriggers, stopAndDropSlot, syncCapture, uniqueSlot, waitFor } from './support/capture-helpers';

describe('defaultSlotName()', () => {
  it('is nestjs_bemi_<database> for plain names', () => {
    expect(defaultSlotName('app_dev')).toBe('nestjs_bemi_app_dev');
    expect(defaultSlotName('shop2')).toBe('nestjs_bemi_shop2');
  });

  it('keeps to slot-name characters and 63 characters, and never gives two databases one name', () => {
    const names = ['My-App', 'my_app', 'my-app', 'MY_APP', 'ünïcode', 'a'.repeat(63), `${'a'.repeat(62)}b`, 'with space'];
    const slots = names.map(defaultSlotName);
    for (const slot of slots) expect(slot).toMatch(/^[a-z0-9_]{1,63}$/);
    expect(new Set(slots).size).toBe(names.length);
    expect(defaultSlotName('My-App')).toMatch(/^nestjs_bemi_my_app_[0-9a-f]{8}$/);
  });
});

describe('capture option checks that name the option', () => {
  it('rejects a connection string that is not a postgres:// URL, without echoing it', () => {
    expect(() => resolveCaptureOptions({ source: 'postgres://h/db', destination: 'not a url' })).toThrow(BemiCaptureOptionsError);
    expect(() => resolveCaptureOptions({ source: 'postgres://h/db', destination: 'not a url' })).toThrow(/Capture option "destination" must be a postgres:\/\//);
    expect(() => resolveCaptureOptions({ source: 'mysql://u:secret@h/db' })).toThrow(/"source"/);
    expect(() => resolveCaptureOptions({ source: 'mysql://u:secret@h/db' })).not.toThrow(/secret/);
    expect(resolveCaptureOptions({ source: 'postgresql://h/db' }).source).toEqual({ connectionString: 'postgresql://h/db' });
  });
});

/** Slots are per server: the default must differ per database, and old trails keep their slot. */
describe('capture: the default slot is per database', () => {
  let one: TestDatabase;
  let two: TestDatabase;
  const workers: Array<[BemiCaptureWorker, TestDatabase]> = [];

  async function start(db: TestDatabase, extra: Record<string, unknown> = {}): Promise<BemiCaptureWorker> {
    // No slotName: the worker picks the default. A unique publication keeps test files apart.
    const worker = new BemiCaptureWorker(resolveCaptureOptions({ source: db.url, progressIntervalMs: 0, heartbeatIntervalMs: 60_000, publicationName: uniqueSlot(), logger: new RecordingLogger(), ...extra }));
    await worker.start();
    workers.push([worker, db]);
    return worker;
  }

  beforeAll(async () => {
    one = await createTestDatabase('slot_default_one');
    two = await createTestDatabase('slot_default_two');
    for (const db of [one, two]) {
      await installTriggers(db);
      await db.query(`CREATE TABLE item (id int PRIMARY KEY, v text)`);
      await installTriggers(db); // again: the table came after the first run
    }
  });

  afterAll(async () => {
    for (const [w, db] of workers) await stopAndDropSlot(w, db).catch(() => undefined);
    await one.drop();
    await two.drop();
  });

  it('two databases of one server each get their own slot and their own changes', async () => {
    const a = await start(one);
    const b = await start(two);
    expect(a.status().slotName).toBe(defaultSlotName(one.name));
    expect(b.status().slotName).toBe(defaultSlotName(two.name));
    await one.query(`INSERT INTO item VALUES (1, 'one')`);
    await two.query(`INSERT INTO item VALUES (2, 'two')`);
    await syncCapture(one);
    await syncCapture(two);
    expect((await changesOf(one, 'item')).map((c) => c.after)).toEqual([{ id: 1, v: 'one' }]);
    expect((await changesOf(two, 'item')).map((c) => c.after)).toEqual([{ id: 2, v: 'two' }]);
  });

  it('a slot of another database is refused with a message that does not suggest dropping it', async () => {
    const error = await start(two, { slotName: defaultSlotName(one.name) }).then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(error).toBeInstanceOf(BemiCaptureSetupError);
    const text = (error as Error).message;
    expect(text).toContain(`belongs to database "${one.name}"`);
    expect(text).toContain(`Do not drop`);
    expect(text).not.toMatch(/capture:drop-slot/);
    // And capture:drop-slot itself refuses another database's slot.
    const write = jest.spyOn(process.stderr, 'write').mockImplementation(() => true);
    try {
      expect(await runDropSlotCommand(['--database-url', two.url, '--slot', defaultSlotName(one.name), '--keep-publication'])).toBe(1);
      expect(write.mock.calls.map((c) => String(c[0])).join('')).toMatch(/belongs to database .* not dropped/);
    } finally {
      write.mockRestore();
    }
    expect(await one.query(`SELECT 1 FROM pg_replication_slots WHERE slot_name = $1`, [defaultSlotName(one.name)])).toHaveLength(1);
  });

  it(`keeps using an existing "${LEGACY_SLOT_NAME}" slot of this database (the default before 0.2), so the trail resumes`, async () => {
    const legacy = await createTestDatabase('slot_default_legacy');
    let worker: BemiCaptureWorker | undefined;
    try {
      await installTriggers(legacy);
      await legacy.query(`CREATE TABLE item (id int PRIMARY KEY, v text)`);
      await installTriggers(legacy);
      // Only this test creates the old name on the shared server; wait out a parallel run's copy.
      await waitFor(async () => (await legacy.query(`SELECT 1 FROM pg_replication_slots WHERE slot_name = $1`, [LEGACY_SLOT_NAME])).length === 0, 'no other nestjs_bemi slot');
      // As an earlier release left it: publication and slot in place, a change not yet captured.
      const publication = uniqueSlot();
      await legacy.query(`CREATE PUBLICATION ${publication} FOR TABLE item, capture_sync`);
      await legacy.query(`SELECT pg_create_logical_replication_slot($1, 'pgoutput')`, [LEGACY_SLOT_NAME]);
      await legacy.query(`INSERT INTO item VALUES (7, 'while stopped')`);
      worker = new BemiCaptureWorker(resolveCaptureOptions({ source: legacy.url, progressIntervalMs: 0, publicationName: publication, logger: new RecordingLogger() }));
      await worker.start();
      expect(worker.status().slotName).toBe(LEGACY_SLOT_NAME);
      await syncCapture(legacy);
      expect((await changesOf(legacy, 'item')).map((c) => c.after)).toEqual([{ id: 7, v: 'while stopped' }]);
    } finally {
      await stopAndDropSlot(worker, legacy).catch(() => undefined);
      await legacy.query(`SELECT pg_drop_replication_slot(slot_name) FROM pg_replication_slots WHERE slot_name = $1 AND NOT active`, [LEGACY_SLOT_NAME]).catch(() => undefined);
      await legacy.drop();
    }
  });

  it('a schema that does not exist is named at startup, with the schemas that do', async () => {
    await expect(start(one, { slotName: uniqueSlot(), schemas: ['public', 'nope'] })).rejects.toThrow(
      /Capture option "schemas" lists "nope", which database "[^"]+" does not have \(its schemas: .*public.*\)/,
    );
  });
});
