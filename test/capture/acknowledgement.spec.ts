import { LogicalReplicationService, PgoutputPlugin, type LogicalReplicationConfig, type Pgoutput } from 'pg-logical-replication';
import { formatLsn, parseLsn } from '../../lib/capture/lsn';
import { createTestDatabase, type TestDatabase } from '../support/database';
import { uniqueSlot, waitFor } from './support/capture-helpers';

/**
 * What pg-logical-replication 2.5 actually tells the server, checked against PostgreSQL's own
 * record of the slot. The worker's design (no auto acknowledge, no timer, lsn - 1) rests on these.
 */
describe('pg-logical-replication acknowledgement semantics (verified, not assumed)', () => {
  let db: TestDatabase;

  beforeAll(async () => {
    db = await createTestDatabase('capture_ack');
    await db.query(`CREATE TABLE t (id serial PRIMARY KEY, v text); CREATE PUBLICATION ack_pub FOR TABLE t;`);
  });

  afterAll(() => db.drop());

  async function newSlot(): Promise<string> {
    const slot = uniqueSlot();
    await db.query(`SELECT pg_create_logical_replication_slot($1, 'pgoutput')`, [slot]);
    return slot;
  }

  async function confirmed(slot: string): Promise<bigint> {
    const [row] = await db.query(`SELECT confirmed_flush_lsn::text AS lsn FROM pg_replication_slots WHERE slot_name = $1`, [slot]);
    return parseLsn(row.lsn);
  }

  async function stream(slot: string, config: Partial<LogicalReplicationConfig>) {
    const service = new LogicalReplicationService({ connectionString: db.url }, config);
    const messages: Pgoutput.Message[] = [];
    service.on('data', (_lsn: string, msg: Pgoutput.Message) => void messages.push(msg));
    service.on('error', () => undefined);
    const started = new Promise((r) => service.once('start', r));
    service.subscribe(new PgoutputPlugin({ protoVersion: 1, publicationNames: ['ack_pub'] }), slot, '0/0').catch(() => undefined);
    await started;
    const commits = () => messages.filter((m): m is Pgoutput.MessageCommit => m.tag === 'commit');
    const xids = () => messages.filter((m): m is Pgoutput.MessageBegin => m.tag === 'begin').map((m) => m.xid);
    return { service, messages, commits, xids, stop: () => service.destroy() };
  }

  async function commitRow(value: string): Promise<number> {
    const [row] = await db.query(`INSERT INTO t (v) VALUES ($1) RETURNING txid_current()::text AS xid`, [value]);
    return Number(row.xid);
  }

  it('by default confirms every message as soon as it is received (before anyone stored it)', async () => {
    const slot = await newSlot();
    const s = await stream(slot, {});
    const initial = await confirmed(slot);
    await commitRow('auto');
    await waitFor(() => s.commits().length === 1, 'the commit');
    await waitFor(async () => (await confirmed(slot)) > initial, 'the automatic acknowledgement', 15_000);
    await s.stop();
  });

  it('with auto: false still confirms what it received on a timer, unless timeoutSeconds is 0', async () => {
    const timed = await newSlot();
    const untimed = await newSlot();
    const a = await stream(timed, { acknowledge: { auto: false, timeoutSeconds: 1 } });
    const b = await stream(untimed, { acknowledge: { auto: false, timeoutSeconds: 0 } });
    const before = { timed: await confirmed(timed), untimed: await confirmed(untimed) };
    await commitRow('timer');
    await waitFor(() => a.commits().length === 1 && b.commits().length === 1, 'both streams to receive the commit');
    // The 1 s timer confirms the received position although nothing was acknowledged.
    await waitFor(async () => (await confirmed(timed)) > before.timed, 'the timer acknowledgement', 15_000);
    // Without the timer nothing is confirmed for as long as the other one took, and then some.
    await new Promise((r) => setTimeout(r, 2500));
    expect(await confirmed(untimed)).toBe(before.untimed);
    await a.stop();
    await b.stop();
  });

  it('acknowledge(lsn) confirms lsn + 1, which skips a transaction whose commit starts at lsn', async () => {
    const slot = await newSlot();
    let s = await stream(slot, { acknowledge: { auto: false, timeoutSeconds: 0 } });
    await commitRow('first');
    const second = await commitRow('second');
    await waitFor(() => s.commits().length === 2, 'two commits');
    const [, c2] = s.commits();
    const secondCommitStart = parseLsn(c2.commitLsn!); // where the second transaction's commit record starts

    // The worker's way: pass lsn - 1 so that exactly `secondCommitStart` is confirmed.
    await s.service.acknowledge(formatLsn(secondCommitStart - 1n));
    await waitFor(async () => (await confirmed(slot)) === secondCommitStart, 'the exact confirmation');
    await s.stop();
    s = await stream(slot, { acknowledge: { auto: false, timeoutSeconds: 0 } });
    await waitFor(() => s.commits().length === 1, 'the re-delivery');
    expect(s.xids()).toEqual([second]); // resumes with the transaction whose commit starts there

    // The library's plain call with the same position confirms one byte further...
    await s.service.acknowledge(formatLsn(secondCommitStart));
    await waitFor(async () => (await confirmed(slot)) === secondCommitStart + 1n, 'the +1 confirmation');
    await s.stop();
    // ...and PostgreSQL then treats that transaction as done: it is never sent again.
    s = await stream(slot, { acknowledge: { auto: false, timeoutSeconds: 0 } });
    const third = await commitRow('third');
    await waitFor(() => s.commits().length >= 1 && s.xids().includes(third), 'a later transaction');
    expect(s.xids()).not.toContain(second);
    await s.stop();
  });
});
