import { createHash } from 'node:crypto';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import type { Client } from 'pg';
import { from as copyFrom } from 'pg-copy-streams';
import { quoteIdent, quoteLiteral } from '../shared/sql-quote';
import { CAPTURE_STATE_TABLE, CHANGES_TABLE } from '../trail/changes-table';
import { jsonbSafe } from '../trail/json-values';
import { storedContext, type ChangeRow } from './pgoutput-stitcher';
import type { SchemaLogEntry, SchemaLogTable } from './schema-log';
import { UuidV7Generator } from './uuid-v7';
import { samePoint, type BatchChain, type ChainLink, type ChainLinks, type ChainPoint, type ChainedRow } from './chain-links';

/** Where the last stored source transaction ended; written with the rows, in one destination transaction. */
export interface StoredPosition {
  commitPosition: bigint;
  commitEndPosition: bigint;
  committedAt: string;
}

const COLUMNS = `id, primary_key, previous_key, before, after, context, role, session_role, database, schema, "table", operation, committed_at, queued_at, transaction_id, position, commit_position, seq, context_seq`;
const CHAIN_COLUMNS_SQL = ', chain_hash, chain_previous_position, chain_previous_seq';


/** Rows ready for the destination: their COPY text is built before the write they wait for. */
export interface PreparedBatch {
  readonly rows: readonly ChangeRow[];
  readonly text: string;
  /** Schema log entries decoded with these rows, stored in the same destination transaction. */
  readonly schemaEntries: readonly SchemaLogEntry[];
  /** With the chain on: where the rows' links start and end. */
  readonly chain?: BatchChain;
}

/**
 * Writes `changes` rows to the destination inside one open destination transaction at a time.
 * Rows already present (same commit position and seq) are skipped, which makes re-delivery after
 * a crash harmless: the table holds each change exactly once.
 *
 * Batches go in with COPY (about twice as fast as a parameterized INSERT here). COPY cannot skip
 * conflicts, so it runs under a savepoint: a batch that meets an already stored change (which the
 * stored position normally prevents) is rolled back to it and inserted with ON CONFLICT DO NOTHING.
 * Ids are time-ordered (UUIDv7) from the worker, so primary key inserts append to the index.
 *
 * Round trips are few on purpose: the worker's thread is busy decoding the next batch while one
 * is written, so every reply waits for it a little. A batch costs two (savepoint, COPY), a commit
 * one (state row and COMMIT in one simple query; COMMIT also releases the last savepoint).
 */
export class ChangesWriter {
  private open = false;
  private savepoint = false;
  /** On the row-by-row path with the chain on: where the rows stored so far end. */
  private cursor: ChainPoint | null = null;
  /** Changes already reported as unstorable. */
  private readonly reported = new WeakSet<ChangeRow>();
  private readonly insertSql: string;
  private readonly copySql: string;
  private readonly stateTable: string;
  constructor(
    private readonly client: Client,
    schema: string,
    private readonly slotName: string,
    /** Writers of one worker share it, so every id it stores follows one time order. */
    private readonly ids: UuidV7Generator = new UuidV7Generator(),
    /** Told of each change stored in its unstorable form (see {@link unstorableForm}). */
    private readonly onUnstorable?: (row: ChangeRow, reason: string) => void,
    /** Where schema log entries go, and the source database they describe. */
    private readonly schemaLog?: { table: SchemaLogTable; database: string },
    /** With the chain on: the session's links, shared by its writers. */
    private readonly chain?: ChainLinks,
  ) {
    const changes = `${quoteIdent(schema)}.${quoteIdent(CHANGES_TABLE)}`;
    // No conflict target: on a partitioned `changes` the unique key must also hold the partition
    // key (commit_position, seq, committed_at), and a target naming only the first two matches no
    // constraint there. Any unique conflict is a re-delivered change: ids are fresh per delivery.
    const columns = chain ? COLUMNS + CHAIN_COLUMNS_SQL : COLUMNS;
    this.copySql = `COPY ${changes} (${columns}) FROM STDIN`;
    this.insertSql = `INSERT INTO ${changes} (${columns})
      SELECT * FROM unnest($1::uuid[], $2::text[], $3::text[], $4::jsonb[], $5::jsonb[], $6::jsonb[], $7::text[], $8::text[], $9::text[], $10::text[], $11::text[], $12::text[],
                           $13::timestamptz[], $14::timestamptz[], $15::bigint[], $16::bigint[], $17::bigint[], $18::int[], $19::int[]${chain ? ', $20::bytea[], $21::bigint[], $22::int[]' : ''})
      ON CONFLICT DO NOTHING`;
    this.stateTable = `${quoteIdent(schema)}.${quoteIdent(CAPTURE_STATE_TABLE)}`;
  }

  get inTransaction(): boolean {
    return this.open;
  }

  /** Assigns ids and builds the COPY text: CPU work the worker overlaps with the write in flight. */
  prepare(rows: readonly ChangeRow[], schemaEntries: readonly SchemaLogEntry[] = []): PreparedBatch {
    if (!this.chain) return { rows, text: rows.length ? copyText(rows, this.ids) : '', schemaEntries };
    const linked = this.chain.link(rows);
    return { rows: linked.rows, text: linked.rows.length ? copyText(linked.rows, this.ids, true) : '', schemaEntries, chain: linked.chain };
  }

  /** Inserts rows and schema log entries (opening a transaction if needed); returns how many rows were new. */
  async insert(batch: PreparedBatch): Promise<number> {
    const { rows } = batch;
    if (batch.schemaEntries.length > 0 && this.schemaLog) {
      if (!this.open) {
        await this.client.query('BEGIN');
        this.open = true;
      }
      await this.schemaLog.table.insert(this.client, this.schemaLog.database, batch.schemaEntries);
    }
    if (rows.length === 0) return 0;
    if (!this.open) {
      await this.client.query('BEGIN; SAVEPOINT bemi_batch');
      this.open = true;
    } else {
      await this.client.query(this.savepoint ? 'RELEASE SAVEPOINT bemi_batch; SAVEPOINT bemi_batch' : 'SAVEPOINT bemi_batch');
    }
    this.savepoint = true;
    try {
      const copy = this.client.query(copyFrom(this.copySql));
      await pipeline(Readable.from([batch.text]), copy);
      return rows.length;
    } catch (e) {
      const code = (e as { code?: string }).code;
      // unique_violation: some rows are stored already. A data error: some row cannot be stored.
      if (code !== '23505' && !isDataError(code)) throw e;
      await this.client.query('ROLLBACK TO SAVEPOINT bemi_batch');
    }
    return this.insertLinked(batch, batch.chain?.start ?? null);
  }

  /** The row-by-row path (see insertIsolating); with the chain on, links rows again from `from` as they are stored. */
  private async insertLinked(batch: PreparedBatch, from: ChainPoint | null): Promise<number> {
    this.cursor = from;
    const n = await this.insertIsolating(batch.rows);
    if (this.chain && batch.chain) {
      this.chain.moved(batch.chain.end, this.cursor);
      batch.chain.start = from;
      batch.chain.end = this.cursor;
    }
    return n;
  }

  /**
   * With the chain on, called in stream order once every earlier batch is written: a batch linked
   * from where an earlier one was expected to end, but did not (one of its changes was stored in
   * its unstorable form, so its link changed), is written again from where that one really ended.
   */
  async joinChain(batch: PreparedBatch, written: number): Promise<number> {
    const chain = this.chain;
    if (!chain || !batch.chain) return written;
    if (!samePoint(chain.joined, batch.chain.start)) {
      if (batch.rows.length === 0) {
        batch.chain.end = chain.joined;
      } else {
        await this.client.query('ROLLBACK TO SAVEPOINT bemi_batch');
        written = await this.insertLinked(batch, chain.joined);
      }
    }
    chain.joined = batch.chain.end;
    return written;
  }

  /**
   * Inserts rows skipping stored ones; when the database refuses some row's values (a data error:
   * an encoding bug, a value jsonb cannot hold), halves the rows under savepoints until the
   * refused ones are alone, and stores each of those in its unstorable form. So one change can
   * neither stop capture nor take its neighbours with it, and nothing is skipped without a row.
   */
  private async insertIsolating(rows: readonly ChangeRow[]): Promise<number> {
    await this.client.query('SAVEPOINT bemi_part');
    try {
      const n = await this.insertSkippingStored(rows);
      await this.client.query('RELEASE SAVEPOINT bemi_part');
      return n;
    } catch (e) {
      const code = (e as { code?: string }).code;
      if (!isDataError(code)) throw e;
      await this.client.query('ROLLBACK TO SAVEPOINT bemi_part; RELEASE SAVEPOINT bemi_part');
      if (rows.length > 1) {
        const half = Math.ceil(rows.length / 2);
        return (await this.insertIsolating(rows.slice(0, half))) + (await this.insertIsolating(rows.slice(half)));
      }
      const reason = `${(e as Error).message} (SQLSTATE ${code})`;
      // A batch written again to mend the chain (joinChain) meets its refused changes a second time.
      if (!this.reported.has(rows[0])) this.onUnstorable?.(rows[0], reason);
      this.reported.add(rows[0]);
      // The context (who made the change) is kept when it was not what the database refused.
      await this.client.query('SAVEPOINT bemi_part');
      try {
        const n = await this.insertSkippingStored([unstorableForm(rows[0], reason, true)]);
        await this.client.query('RELEASE SAVEPOINT bemi_part');
        return n;
      } catch (again) {
        if (!isDataError((again as { code?: string }).code)) throw again;
        await this.client.query('ROLLBACK TO SAVEPOINT bemi_part; RELEASE SAVEPOINT bemi_part');
      }
      return this.insertSkippingStored([unstorableForm(rows[0], reason, false)]);
    }
  }

  private async insertSkippingStored(rows: readonly ChainedRow[]): Promise<number> {
    const n = rows.length;
    // Linked as stored, so a change stored in its unstorable form is linked as it is stored.
    const end = this.chain ? this.chain.relink(rows, this.cursor) : null;
    const cols: unknown[][] = Array.from({ length: this.chain ? 22 : 19 }, () => new Array(n));
    for (let i = 0; i < n; i++) {
      const r = rows[i];
      cols[0][i] = this.ids.next();
      cols[1][i] = r.primaryKey;
      cols[2][i] = r.previousKey;
      cols[3][i] = r.before;
      cols[4][i] = r.after;
      cols[5][i] = storedContext(r);
      cols[6][i] = r.role;
      cols[7][i] = r.sessionRole;
      cols[8][i] = r.database;
      cols[9][i] = r.schema;
      cols[10][i] = r.table;
      cols[11][i] = r.operation;
      cols[12][i] = r.committedAt;
      cols[13][i] = r.queuedAt;
      cols[14][i] = r.transactionId;
      cols[15][i] = r.position;
      cols[16][i] = r.commitPosition;
      cols[17][i] = r.seq;
      cols[18][i] = r.contextSeq ?? null;
      if (r.chain) {
        cols[19][i] = r.chain.hash;
        cols[20][i] = r.chain.previous?.commitPosition ?? null;
        cols[21][i] = r.chain.previous?.seq ?? null;
      }
    }
    const stored = (await this.client.query(this.insertSql, cols)).rowCount ?? 0;
    if (!this.chain) return stored;
    // A change after the chain head that is stored already: another writer holds this trail. The
    // session ends and the next one links from what is really stored.
    if (stored !== n) throw new Error(`the chain cannot continue: ${n - stored} change(s) after its head were stored already (is a second worker writing this trail?)`);
    this.cursor = end;
    return stored;
  }

  /** Commits the open transaction (if any), recording `position` in `_bemi_capture_state` with it. */
  async commit(position: StoredPosition | undefined): Promise<void> {
    if (!this.open) return;
    this.open = false;
    this.savepoint = false;
    // One simple query (literals, not parameters: the extended protocol takes one statement). An
    // error stops it before COMMIT; the worker then drops the connection, so nothing half-done stays.
    await this.client.query(
      position
        ? `UPDATE ${this.stateTable} SET last_commit_position = ${position.commitPosition.toString()}, last_commit_end_position = ${position.commitEndPosition.toString()}, ` +
            `last_committed_at = ${quoteLiteral(position.committedAt)}, updated_at = now() WHERE slot_name = ${quoteLiteral(this.slotName)}; COMMIT`
        : 'COMMIT',
    );
  }

  async rollback(): Promise<void> {
    if (!this.open) return;
    this.open = false;
    this.savepoint = false;
    await this.client.query('ROLLBACK');
  }
}

/** SQLSTATE classes of a value the database refused (22 data exception, 54 program limit such as nesting depth). */
function isDataError(code: string | undefined): boolean {
  return code !== undefined && (code.startsWith('22') || code.startsWith('54'));
}

/**
 * A change the database refused, in a form it cannot refuse: each image (and, unless
 * `keepContext`, the context) becomes `{"_bemi": {"unstorable": "<reason>", "text": "<the image
 * as text>"}}`, with what jsonb cannot hold (U+0000, lone surrogates) replaced. The row keeps its
 * position, table and operation, and its key (a digest of it when it is too long to index).
 */
export function unstorableForm(row: ChangeRow, reason: string, keepContext: boolean): ChangeRow {
  const key = storableKey(row.primaryKey);
  const previous = storableKey(row.previousKey);
  const asText = (json: string) =>
    jsonbSafe(
      JSON.stringify({
        _bemi: { unstorable: reason, text: json, ...(key.full !== undefined ? { primaryKey: key.full } : {}), ...(previous.full !== undefined ? { previousKey: previous.full } : {}) },
      }),
    );
  return {
    ...row,
    primaryKey: key.stored,
    previousKey: previous.stored,
    before: asText(row.before),
    after: asText(row.after),
    context: keepContext ? row.context : asText(row.context),
  };
}

/**
 * A key as the unstorable form stores it: without U+0000, and when too long for the trail's b-tree
 * indexes (about 2.7 kB) as a digest, the whole key (`full`) then going into the marker.
 */
function storableKey(value: string | null): { stored: string | null; full?: string } {
  if (value === null) return { stored: null };
  const key = value.replace(/\u0000/g, '\uFFFD');
  if (Buffer.byteLength(key) <= MAX_STORED_KEY_BYTES) return { stored: key };
  return { stored: `sha256:${createHash('sha256').update(key).digest('hex')}`, full: key };
}

/** Longest primary key text the unstorable form keeps as it is. */
const MAX_STORED_KEY_BYTES = 1024;

/** Rows in COPY's text format: tab-separated, `\N` for NULL, backslash escapes. */
function copyText(rows: readonly ChainedRow[], ids: UuidV7Generator, chained = false): string {
  let out = '';
  // Rows of one transaction share their context: escape it once (a context is never '').
  let context = '';
  let contextText = '';
  for (const r of rows) {
    const stored = storedContext(r);
    if (stored !== null && stored !== context) {
      context = stored;
      contextText = esc(context);
    }
    out +=
      `${ids.next()}\t${escOrNull(r.primaryKey)}\t${escOrNull(r.previousKey)}\t${esc(r.before)}\t${esc(r.after)}\t${stored === null ? '\\N' : contextText}\t${escOrNull(r.role)}\t${escOrNull(r.sessionRole)}\t${esc(r.database)}\t` +
      `${esc(r.schema)}\t${esc(r.table)}\t${r.operation}\t${r.committedAt}\t${r.queuedAt}\t${r.transactionId}\t${r.position}\t${r.commitPosition}\t${r.seq}\t${r.contextSeq ?? '\\N'}` +
      (chained ? chainText(r.chain!) : '') +
      '\n';
  }
  return out;
}

/** The chain columns of a COPY line: bytea as `\x<hex>` (its backslash escaped), NULL pointers at a chain's start. */
function chainText(link: ChainLink): string {
  return `\t\\\\x${link.hash.toString('hex')}\t${link.previous ? `${link.previous.commitPosition}\t${link.previous.seq}` : '\\N\t\\N'}`;
}

/** A nullable text column: `\\N` for NULL. */
function escOrNull(value: string | null): string {
  return value === null ? '\\N' : esc(value);
}

const SPECIAL = /[\\\t\n\r]/;
function esc(value: string): string {
  if (!SPECIAL.test(value)) return value;
  return value.replace(/\\/g, '\\\\').replace(/\t/g, '\\t').replace(/\n/g, '\\n').replace(/\r/g, '\\r');
}
