import { MikroORM } from '@mikro-orm/core';
import { PostgreSqlDriver } from '@mikro-orm/postgresql';
import { BemiCaptureWorker } from '../../lib/capture/capture.worker';
import { BemiChange } from '../../lib/history/bemi-change.entity';
import { BemiHistory } from '../../lib/history/bemi-history';
import type { TrailChainHead, TrailVerifyResult } from '../../lib/history/trail-verify.interfaces';
import { captureOptions, syncCapture, withContext } from '../capture/support/capture-helpers';
import { RecordingLogger } from '../support/recording-logger';
import { startCapturedTrail, type CapturedTrail } from './captured-trail';
import { copyTrail, links, relinkFrom } from './chain-tampering';

/** Copies are named _bemi*: capture never publishes such tables, so they can be changed freely. */
const TAMPERED = '_bemi_tampered';
// note is stored out of line uncompressed, so a long one is TOASTed.
const DDL = `CREATE TABLE item (id int PRIMARY KEY, body jsonb, raw json, note text); ALTER TABLE item ALTER COLUMN note SET STORAGE EXTERNAL;`;

/** Rows with what jsonb rewrites (key order, duplicates, escapes, exponents) and an unchanged-TOAST marker. */
const WRITES = [
  withContext({ userId: 7, 'é': 'ü 😀', path: 'a\\b "q"' }, `INSERT INTO item VALUES (1, '{"b": 1, "a": "é😀\\n", "n": 12345678901234567890.5, "nested": {"x": [1, {}]}, "e": {}}', '{"k": 1, "k": 2, "big": 1e2, "esc": "\\u00e9\\/"}', repeat('x', 10000))`),
  `INSERT INTO item VALUES (2, '{}', '[]', NULL), (3, '{"z": [], "y": -0.0}', 'null', 'short')`,
  // Leaves the TOASTed note alone: without REPLICA IDENTITY FULL, after holds the marker for it.
  withContext({ job: 'nightly' }, `UPDATE item SET body = '{"v": 2}' WHERE id = 1`),
  `DELETE FROM item WHERE id = 2`,
  `UPDATE item SET id = 30 WHERE id = 3`,
  `TRUNCATE item`,
  `INSERT INTO item VALUES (4, '{"after": "truncate"}', '{}', 'n')`,
];

describe('BemiHistory.verify (unkeyed chain, through the capture worker)', () => {
  let trail: CapturedTrail;
  let orm: MikroORM;
  /** The trail (or a tampered copy of it) as verify sees it. */
  const verify = async (table = 'changes', expectHead?: TrailChainHead): Promise<TrailVerifyResult> => BemiHistory.create(orm, { table }).verify({ expectHead });
  const tampered = async (): Promise<Array<{ commit_position: string; seq: number; hash: string | null }>> => {
    await copyTrail(trail.db, TAMPERED);
    return links(trail.db, TAMPERED);
  };

  beforeAll(async () => {
    trail = await startCapturedTrail('trail_verify', DDL, { chain: true });
    for (const sql of WRITES) await trail.db.query(sql);
    await syncCapture(trail.db);
    orm = await MikroORM.init({ driver: PostgreSqlDriver, clientUrl: trail.db.url, entities: [BemiChange], allowGlobalContext: true, debug: false });
  });

  afterAll(async () => {
    await orm?.close(true);
    await trail?.close();
  });

  it('links every change to the one before it as the worker writes it', async () => {
    const stored = await links(trail.db);
    expect(stored.length).toBeGreaterThanOrEqual(9);
    expect(stored.every((r) => r.hash !== null && r.hash.length === 64)).toBe(true);
    expect(stored[0]).toMatchObject({ previous_position: null, previous_seq: null });
    for (let i = 1; i < stored.length; i++) {
      expect({ previous_position: stored[i].previous_position, previous_seq: stored[i].previous_seq }).toEqual({ previous_position: stored[i - 1].commit_position, previous_seq: stored[i - 1].seq });
    }
    const [marker] = await trail.db.query(`SELECT after->>'note' AS note FROM changes WHERE "table" = 'item' AND operation = 'UPDATE' AND primary_key = '1'`);
    expect(marker.note).toBe('__bemi_unchanged_toast__');
  });

  it('verifies the chain after the jsonb round trip, and reports the head', async () => {
    const result = await verify();
    const stored = await links(trail.db);
    const last = stored[stored.length - 1];
    expect(result).toMatchObject({ ok: true, status: 'intact', rows: stored.length, chained: stored.length, unchained: 0 });
    expect(result.ok && result.heads).toEqual([{ database: trail.db.name, commitPosition: last.commit_position, seq: last.seq, hash: last.hash }]);
  });

  it('reports progress a page at a time', async () => {
    const seen: number[] = [];
    const result = await BemiHistory.create(orm).verify({ pageSize: 3, onProgress: (p) => seen.push(p.rows) });
    expect(result.ok).toBe(true);
    expect(seen.length).toBeGreaterThan(2);
    expect(seen).toEqual([...seen].sort((a, b) => a - b));
    expect(seen[seen.length - 1]).toBe(result.rows);
  });

  it('an edited row: its own link fails', async () => {
    const rows = await tampered();
    const victim = rows[3];
    await trail.db.query(`UPDATE _bemi_tampered SET after = after || '{"task": "forged"}' WHERE commit_position = $1 AND seq = $2`, [victim.commit_position, victim.seq]);
    expect(await verify(TAMPERED)).toMatchObject({ ok: false, status: 'broken', broken: { kind: 'edited', position: { commitPosition: victim.commit_position, seq: victim.seq } } });
  });

  it('an edited database role (the roles are part of the content): its own link fails', async () => {
    const rows = await tampered();
    const victim = rows[2];
    expect((await trail.db.query(`SELECT role FROM _bemi_tampered WHERE commit_position = $1 AND seq = $2`, [victim.commit_position, victim.seq]))[0].role).toBe('postgres');
    await trail.db.query(`UPDATE _bemi_tampered SET role = 'somebody_else' WHERE commit_position = $1 AND seq = $2`, [victim.commit_position, victim.seq]);
    expect(await verify(TAMPERED)).toMatchObject({ ok: false, status: 'broken', broken: { kind: 'edited', position: { commitPosition: victim.commit_position, seq: victim.seq } } });
  });

  it('a shared context: an edit of its holder breaks the holder, a re-pointed row its own link', async () => {
    await tampered();
    const [shared] = await trail.db.query<{ commit_position: string; seq: number; context_seq: number }>(
      `SELECT commit_position::text, seq, context_seq FROM ${TAMPERED} WHERE context IS NULL AND context_seq <> seq ORDER BY commit_position, seq LIMIT 1`,
    );
    expect(shared).toBeDefined(); // the two-row INSERT: its second row shares the first's (empty) context
    await trail.db.query(`UPDATE ${TAMPERED} SET context = '{"userId": "admin"}' WHERE commit_position = $1 AND seq = $2`, [shared.commit_position, shared.context_seq]);
    expect(await verify(TAMPERED)).toMatchObject({ ok: false, broken: { kind: 'edited', position: { commitPosition: shared.commit_position, seq: shared.context_seq } } });
    await tampered();
    await trail.db.query(`UPDATE ${TAMPERED} SET context_seq = context_seq + 5 WHERE commit_position = $1 AND seq = $2`, [shared.commit_position, shared.seq]);
    expect(await verify(TAMPERED)).toMatchObject({ ok: false, broken: { kind: 'edited', position: { commitPosition: shared.commit_position, seq: shared.seq } } });
  });

  it('a deleted row in the middle: the next row names it', async () => {
    const rows = await tampered();
    const victim = rows[4];
    await trail.db.query(`DELETE FROM _bemi_tampered WHERE commit_position = $1 AND seq = $2`, [victim.commit_position, victim.seq]);
    const result = await verify(TAMPERED);
    expect(result).toMatchObject({ ok: false, broken: { kind: 'deleted', position: { commitPosition: victim.commit_position, seq: victim.seq } } });
    expect(!result.ok && result.status === 'broken' && result.broken.detail).toMatch(/is not in the trail/);
  });

  it.each([
    ['with a valid unkeyed link', true],
    ['with a made-up hash', false],
  ])('an inserted row (%s): it is no row\'s predecessor', async (_label, linked) => {
    const rows = await tampered();
    const before = rows[2];
    // Between two real rows: same transaction, a seq the worker never used.
    await trail.db.query(
      `INSERT INTO _bemi_tampered (primary_key, before, after, context, database, schema, "table", operation, committed_at, queued_at, transaction_id, position, commit_position, seq, chain_hash, chain_previous_position, chain_previous_seq)
       SELECT '99', '{}', '{"id": 99}', '{"userId": 1}', database, schema, 'item', 'CREATE', committed_at, queued_at, transaction_id, position, commit_position, seq + 1000, '\\x00', commit_position, seq
       FROM _bemi_tampered WHERE commit_position = $1 AND seq = $2`,
      [before.commit_position, before.seq],
    );
    if (linked) await relinkFrom(trail.db, TAMPERED, { commitPosition: before.commit_position, seq: before.seq + 1000 }, undefined, 1);
    expect(await verify(TAMPERED)).toMatchObject({ ok: false, broken: { kind: 'inserted', position: { commitPosition: before.commit_position, seq: before.seq + 1000 } } });
  });

  it('two rows swapped: reordered', async () => {
    const rows = await tampered();
    const [a, b] = [rows[5], rows[6]];
    await trail.db.query(
      `UPDATE _bemi_tampered SET commit_position = CASE WHEN commit_position = $1 AND seq = $2 THEN $3::bigint ELSE $1::bigint END, seq = CASE WHEN commit_position = $1 AND seq = $2 THEN $4::int ELSE $2::int END
        WHERE (commit_position = $1 AND seq = $2) OR (commit_position = $3 AND seq = $4)`,
      [a.commit_position, a.seq, b.commit_position, b.seq],
    );
    expect(await verify(TAMPERED)).toMatchObject({ ok: false, broken: { kind: 'reordered', position: { commitPosition: a.commit_position, seq: a.seq } } });
  });

  it('the last row deleted, or the trail truncated: invisible without a head kept elsewhere, found with it', async () => {
    const rows = await tampered();
    const intact = await verify(TAMPERED);
    if (!intact.ok) throw new Error('the copy should verify');
    const head = intact.heads[0];
    const last = rows[rows.length - 1];
    await trail.db.query(`DELETE FROM _bemi_tampered WHERE commit_position = $1 AND seq = $2`, [last.commit_position, last.seq]);
    expect(await verify(TAMPERED)).toMatchObject({ ok: true, rows: rows.length - 1 });
    expect(await verify(TAMPERED, head)).toMatchObject({ ok: false, broken: { kind: 'deleted', position: { commitPosition: last.commit_position, seq: last.seq } } });
    await trail.db.query(`TRUNCATE _bemi_tampered`);
    expect(await verify(TAMPERED)).toMatchObject({ ok: true, rows: 0, heads: [] });
    expect(await verify(TAMPERED, head)).toMatchObject({ ok: false, broken: { kind: 'deleted' } });
  });

  it('an edit with every later link recomputed (possible without a key): only a kept head shows it', async () => {
    const rows = await tampered();
    const intact = await verify(TAMPERED);
    if (!intact.ok) throw new Error('the copy should verify');
    const victim = rows[3];
    await trail.db.query(`UPDATE _bemi_tampered SET context = '{"userId": 666}' WHERE commit_position = $1 AND seq = $2`, [victim.commit_position, victim.seq]);
    await relinkFrom(trail.db, TAMPERED, { commitPosition: victim.commit_position, seq: victim.seq });
    expect(await verify(TAMPERED)).toMatchObject({ ok: true });
    const result = await verify(TAMPERED, intact.heads[0]);
    expect(result).toMatchObject({ ok: false, broken: { kind: 'edited', position: { commitPosition: intact.heads[0].commitPosition, seq: intact.heads[0].seq } } });
    expect(!result.ok && result.status === 'broken' && result.broken.detail).toMatch(/differs from the expected head/);
  });

  it('goes on across a worker restart, from the last stored row', async () => {
    const before = await links(trail.db);
    const slotName = trail.worker.status().slotName;
    await trail.worker.stop();
    // Written while no worker runs: the next one receives them from the slot.
    await trail.db.query(`INSERT INTO item VALUES (5, '{"restart": true}', '{}', 'r')`);
    const second = new BemiCaptureWorker(captureOptions(trail.db, { slotName, logger: new RecordingLogger(), chain: true }));
    await second.start();
    try {
      await trail.db.query(`UPDATE item SET note = 'again' WHERE id = 5`);
      await syncCapture(trail.db);
    } finally {
      await second.stop();
    }
    const after = await links(trail.db);
    const first = after[before.length];
    expect({ previous_position: first.previous_position, previous_seq: first.previous_seq }).toEqual({ previous_position: before[before.length - 1].commit_position, previous_seq: before[before.length - 1].seq });
    expect(await verify()).toMatchObject({ ok: true, rows: after.length, chained: after.length });
  });
});
