import { MikroORM } from '@mikro-orm/core';
import { PostgreSqlDriver } from '@mikro-orm/postgresql';
import { BemiChange } from '../../lib/history/bemi-change.entity';
import { BemiHistory } from '../../lib/history/bemi-history';
import { syncCapture, withContext } from '../capture/support/capture-helpers';
import { startCapturedTrail, type CapturedTrail } from './captured-trail';
import { copyTrail, links, relinkFrom } from './chain-tampering';

const KEY = 'a-chain-key-of-32-characters-ok!';
const TAMPERED = '_bemi_tampered';

describe('BemiHistory.verify (keyed chain: HMAC-SHA256)', () => {
  let trail: CapturedTrail;
  let orm: MikroORM;

  beforeAll(async () => {
    trail = await startCapturedTrail('trail_verify_keyed', `CREATE TABLE item (id int PRIMARY KEY, note text)`, { chain: { key: KEY } });
    await trail.db.query(withContext({ userId: 3 }, `INSERT INTO item SELECT i, 'n' || i FROM generate_series(1, 6) i`));
    await trail.db.query(`UPDATE item SET note = 'changed' WHERE id = 2`);
    await syncCapture(trail.db);
    orm = await MikroORM.init({ driver: PostgreSqlDriver, clientUrl: trail.db.url, entities: [BemiChange], allowGlobalContext: true, debug: false });
  });

  afterAll(async () => {
    await orm?.close(true);
    await trail?.close();
  });

  it('verifies with the key, not without it', async () => {
    const rows = await links(trail.db);
    expect(await BemiHistory.create(orm).verify({ key: KEY })).toMatchObject({ ok: true, rows: rows.length, chained: rows.length });
    const unkeyed = await BemiHistory.create(orm).verify();
    expect(unkeyed).toMatchObject({ ok: false, broken: { kind: 'edited', position: { commitPosition: rows[0].commit_position, seq: rows[0].seq } } });
    expect(!unkeyed.ok && unkeyed.status === 'broken' && unkeyed.broken.detail).toMatch(/if the chain is keyed, pass its key/);
    const wrong = await BemiHistory.create(orm).verify({ key: 'another-key-of-enough-length' });
    expect(!wrong.ok && wrong.status === 'broken' && wrong.broken.detail).toMatch(/is the key the one capture uses/);
  });

  it('takes the key from the module options by default', async () => {
    const history = new BemiHistory(orm, { trail: { schema: 'public', table: 'changes', captureStateTable: '_bemi_capture_state' }, capture: { chain: { key: KEY } } as never });
    expect(await history.verify()).toMatchObject({ ok: true });
  });

  it('an edit with every later link recomputed without the key is found at the edited row', async () => {
    await copyTrail(trail.db, TAMPERED);
    const rows = await links(trail.db, TAMPERED);
    const victim = rows[2];
    await trail.db.query(`UPDATE ${TAMPERED} SET after = jsonb_set(after, '{note}', '"forged"') WHERE commit_position = $1 AND seq = $2`, [victim.commit_position, victim.seq]);
    await relinkFrom(trail.db, TAMPERED, { commitPosition: victim.commit_position, seq: victim.seq });
    const result = await BemiHistory.create(orm, { table: TAMPERED }).verify({ key: KEY });
    expect(result).toMatchObject({ ok: false, broken: { kind: 'edited', position: { commitPosition: victim.commit_position, seq: victim.seq } } });
    expect(!result.ok && result.status === 'broken' && result.broken.detail).toMatch(/unkeyed SHA-256 link: recomputed without the key/);
  });
});
