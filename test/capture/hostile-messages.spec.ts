import type { BemiCaptureWorker } from '../../lib/capture/capture.worker';
import { createTestDatabase, withClient, type TestDatabase } from '../support/database';
import type { RecordingLogger } from '../support/recording-logger';
import { changesOf, installTriggers, startWorker, stopAndDropSlot, syncCapture } from './support/capture-helpers';

const nested = (depth: number) => '{"a":'.repeat(depth) + '1' + '}'.repeat(depth);

/**
 * Where the trigger migration could not take pg_logical_emit_message from PUBLIC (and for any role
 * granted it), a `_bemi` message is input from anyone. None may stop capture or keep a row change
 * out of the trail.
 */
describe('capture: hostile _bemi messages (real PostgreSQL, in-process worker)', () => {
  let db: TestDatabase;
  let worker: BemiCaptureWorker;
  let logger: RecordingLogger;
  let hostileUrl: string;

  beforeAll(async () => {
    db = await createTestDatabase('capture_hostile');
    await db.query(`CREATE TABLE note (id int PRIMARY KEY, body text)`);
    await installTriggers(db);
    const role = `hostile_${db.name.slice(-8)}`;
    await db.query(`CREATE ROLE ${role} LOGIN PASSWORD 'hostile'`);
    // As if the migration could not revoke it from PUBLIC (a managed service without a superuser).
    await db.query(`SELECT pg_catalog.format('GRANT EXECUTE ON FUNCTION %s TO ${role}', oid::regprocedure) FROM pg_proc WHERE proname = 'pg_logical_emit_message'`)
      .then(async (rows) => { for (const r of rows) await db.query(r.format); });
    const url = new URL(db.url);
    url.username = role;
    url.password = 'hostile';
    hostileUrl = url.toString();
    ({ worker, logger } = await startWorker(db));
  });

  afterAll(async () => {
    await stopAndDropSlot(worker, db);
    await db.drop();
  });

  /**
   * Writes a row whose statement itself emits `content` as the context of a trusted role (after the
   * statement's trigger, so its context is the row's): the worker must cope with whatever it says.
   */
  async function emitThenWrite(id: number, content: string | Buffer): Promise<void> {
    const message = Buffer.concat([Buffer.from('["postgres", "postgres"]\n'), Buffer.from(content)]);
    await db.query(`WITH m AS (SELECT pg_logical_emit_message(true, '_bemi', $2::bytea)) INSERT INTO note SELECT $1, 'after a hostile message' FROM m`, [id, message]);
  }

  it('a role granted pg_logical_emit_message cannot stop capture with a 5,000- or 10,000-deep message', async () => {
    await withClient(hostileUrl, async (c) => {
      await c.query(`SELECT pg_logical_emit_message(true, '_bemi', $1)`, [nested(5000)]);
      await c.query(`SELECT pg_logical_emit_message(true, '_bemi', $1)`, [nested(10_000)]);
    });
    await db.query(`INSERT INTO note VALUES (1, 'still captured')`);
    await syncCapture(db);
    expect((await changesOf(db, 'note')).map((r) => r.after)).toEqual([{ id: 1, body: 'still captured' }]);
    expect(worker.status()).toMatchObject({ state: 'streaming', reconnects: 0 });
  });

  it.each([
    ['malformed JSON', 10, '{"userId": "admin"', /not JSON/],
    ['10,000-deep JSON', 11, nested(10_000), /nests 10000 levels deep/],
    ['invalid UTF-8', 12, Buffer.from([0x7b, 0x22, 0xc3, 0x28, 0x22, 0x3a, 0x31, 0x7d]), /not valid UTF-8/],
    ['a NUL byte', 13, Buffer.from('{"a":"\u0000"}'), /not JSON/],
    ['a JSON array', 14, '[{"userId":"admin"}]', /not a JSON object/],
    ['9 MB of context', 15, `{"pad":"${'x'.repeat(9 * 1024 * 1024)}"}`, /over the 8388608-byte limit/],
  ])('%s: the row is stored with the invalid-context marker, and one warning says why', async (_what, id, content, reason) => {
    const warningsBefore = logger.messages('warn').length;
    await emitThenWrite(id, content);
    await syncCapture(db);
    const [row] = (await changesOf(db, 'note')).filter((r) => r.primary_key === String(id));
    expect(row).toMatchObject({ operation: 'CREATE', after: { id, body: 'after a hostile message' } });
    expect(Object.keys(row.context)).toEqual(['_bemi']);
    expect(row.context._bemi.invalidContext).toMatch(reason);
    const warnings = logger.messages('warn').slice(warningsBefore);
    expect(warnings).toHaveLength(1);
    expect(warnings[0]).toMatch(reason);
    expect(warnings[0]).toMatch(/invalid-context marker/);
  });

  it('keeps a context as deep as the ORM hook can encode, exactly', async () => {
    await emitThenWrite(20, nested(3000));
    await syncCapture(db);
    const [row] = await db.query(`SELECT context::text AS context, role FROM changes WHERE "table" = 'note' AND primary_key = '20'`);
    expect(row.context).toBe(nested(3000).replace(/:/g, ': '));
    expect(row.role).toBe('postgres');
  });
});
