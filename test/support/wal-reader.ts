import { randomBytes } from 'node:crypto';
import { withClient } from './database';

export type WalEvent =
  | { kind: 'message'; transactional: boolean; prefix: string; content: string }
  | { kind: 'change'; table: string; operation: 'INSERT' | 'UPDATE' | 'DELETE' | 'TRUNCATE'; data: string };

export interface WalTransaction {
  xid: number;
  events: WalEvent[];
}

/** A row change together with the context a consumer attributes to it. */
export interface AttributedChange {
  xid: number;
  table: string;
  operation: string;
  data: string;
  /** Parsed context of the latest `_bemi` message before the change in its transaction, or null. */
  context: Record<string, unknown> | null;
  /** The roles that message names: `[role, session role]` (null before any message). */
  roles: [string, string] | null;
}

/** A `_bemi` message's parts: `["<role>","<session role>"]`, a newline, the context JSON (or nothing). */
export function contextMessageParts(content: string): { roles: [string, string]; context: Record<string, unknown> | null } {
  const split = content.indexOf('\n');
  if (!content.startsWith('[') || split < 0) throw new Error(`Not a context message of the trigger: ${content.slice(0, 200)}`);
  const context = content.slice(split + 1);
  const parsed = context === '' ? null : (JSON.parse(context) as Record<string, unknown>);
  return { roles: JSON.parse(content.slice(0, split)) as [string, string], context: parsed && Object.keys(parsed).length ? parsed : null };
}

/**
 * Reads what reached the WAL through a `test_decoding` slot, transaction by transaction in
 * commit order. Independent of the library's own capture code, so tests check the trigger and
 * the hook against PostgreSQL itself.
 */
export class WalReader {
  private constructor(
    private readonly url: string,
    readonly slot: string,
  ) {}

  static async create(url: string): Promise<WalReader> {
    const slot = `wal_test_${randomBytes(4).toString('hex')}`;
    await withClient(url, (c) => c.query(`SELECT pg_create_logical_replication_slot($1, 'test_decoding')`, [slot]));
    return new WalReader(url, slot);
  }

  /** Everything committed since the previous read (consumes it). */
  async read(): Promise<WalTransaction[]> {
    const rows = await withClient(this.url, async (c) =>
      (await c.query(`SELECT xid::text AS xid, data FROM pg_logical_slot_get_changes($1, NULL, NULL, 'include-xids', '1', 'skip-empty-xacts', '1')`, [this.slot])).rows as Array<{ xid: string; data: string }>,
    );
    return groupTransactions(rows);
  }

  /** Row changes of everything committed since the previous read, each with its context. */
  async readChanges(): Promise<AttributedChange[]> {
    return attribute(await this.read());
  }

  async close(): Promise<void> {
    await withClient(this.url, (c) => c.query(`SELECT pg_drop_replication_slot($1)`, [this.slot]));
  }
}

/** Groups test_decoding lines (with include-xids) into transactions, in commit order. */
export function groupTransactions(rows: Array<{ xid: string; data: string }>): WalTransaction[] {
  const transactions: WalTransaction[] = [];
  let current: WalTransaction | undefined;
  // PostgreSQL 14's test_decoding, with skip-empty-xacts, prints a transactional message that
  // comes first in its transaction BEFORE that transaction's BEGIN (15+ prints BEGIN first).
  let early: WalTransaction | undefined;
  for (const { xid, data } of rows) {
    if (data.startsWith('BEGIN')) {
      current = early?.xid === Number(xid) ? early : { xid: Number(xid), events: [] };
      if (current !== early) transactions.push(current);
      early = undefined;
    } else if (data.startsWith('COMMIT')) {
      current = undefined;
    } else {
      const event = parseEvent(data);
      if (current) current.events.push(event);
      else if (event.kind === 'message' && event.transactional) {
        if (early?.xid !== Number(xid)) transactions.push((early = { xid: Number(xid), events: [] }));
        early.events.push(event);
      } else transactions.push({ xid: Number(xid), events: [event] }); // non-transactional message
    }
  }
  return transactions;
}

const MESSAGE = /^message: transactional: (\d) prefix: (.*?), sz: (\d+) content:([\s\S]*)$/;
const CHANGE = /^table (.+?): (INSERT|UPDATE|DELETE|TRUNCATE):\s?([\s\S]*)$/;

export function parseEvent(line: string): WalEvent {
  const m = MESSAGE.exec(line);
  if (m) return { kind: 'message', transactional: m[1] === '1', prefix: m[2], content: m[4] };
  const c = CHANGE.exec(line);
  if (c) return { kind: 'change', table: c[1], operation: c[2] as 'INSERT', data: c[3] };
  throw new Error(`Unexpected test_decoding line: ${line.slice(0, 200)}`);
}

/** The consumer rule: each change gets the latest `_bemi` message before it in its transaction. */
export function attribute(transactions: WalTransaction[]): AttributedChange[] {
  const out: AttributedChange[] = [];
  for (const tx of transactions) {
    let context: Record<string, unknown> | null = null;
    let roles: [string, string] | null = null;
    for (const event of tx.events) {
      if (event.kind === 'message') {
        if (event.prefix !== '_bemi') continue;
        ({ context, roles } = contextMessageParts(event.content));
      } else {
        out.push({ xid: tx.xid, table: event.table, operation: event.operation, data: event.data, context, roles });
      }
    }
  }
  return out;
}
