import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import type { Client } from 'pg';
import { from as copyFrom } from 'pg-copy-streams';
import { quoteIdent } from '../migration/sql-quote';
import { CAPTURE_STATE_TABLE, CHANGES_TABLE } from './changes-table';
import type { ChangeRow } from './pgoutput-stitcher';
import { UuidV7Generator } from './uuid-v7';

/** Where the last stored source transaction ended; written with the rows, in one destination transaction. */
export interface StoredPosition {
  commitPosition: bigint;
  commitEndPosition: bigint;
  committedAt: string;
}

const COLUMNS = `id, primary_key, before, after, context, database, schema, "table", operation, committed_at, queued_at, transaction_id, position, commit_position, seq`;

/**
 * Writes `changes` rows to the destination inside one open destination transaction at a time.
 * Rows already present (same commit position and seq) are skipped, which makes re-delivery after
 * a crash harmless: the table holds each change exactly once.
 *
 * Batches go in with COPY (about twice as fast as a parameterized INSERT here). COPY cannot skip
 * conflicts, so it runs under a savepoint: a batch that meets an already stored change (which the
 * stored position normally prevents) is rolled back to it and inserted with ON CONFLICT DO NOTHING.
 * Ids are time-ordered (UUIDv7) from the worker, so primary key inserts append to the index.
 */
export class ChangesWriter {
  private open = false;
  private readonly insertSql: string;
  private readonly copySql: string;
  private readonly stateSql: string;
  private readonly ids = new UuidV7Generator();

  constructor(
    private readonly client: Client,
    schema: string,
    private readonly slotName: string,
  ) {
    const changes = `${quoteIdent(schema)}.${quoteIdent(CHANGES_TABLE)}`;
    // No conflict target: on a partitioned `changes` the unique key must also hold the partition
    // key (commit_position, seq, committed_at), and a target naming only the first two matches no
    // constraint there. Any unique conflict is a re-delivered change: ids are fresh per delivery.
    this.copySql = `COPY ${changes} (${COLUMNS}) FROM STDIN`;
    this.insertSql = `INSERT INTO ${changes} (${COLUMNS})
      SELECT * FROM unnest($1::uuid[], $2::text[], $3::jsonb[], $4::jsonb[], $5::jsonb[], $6::text[], $7::text[], $8::text[], $9::text[],
                           $10::timestamptz[], $11::timestamptz[], $12::bigint[], $13::bigint[], $14::bigint[], $15::int[])
      ON CONFLICT DO NOTHING`;
    this.stateSql = `UPDATE ${quoteIdent(schema)}.${quoteIdent(CAPTURE_STATE_TABLE)}
      SET last_commit_position = $2, last_commit_end_position = $3, last_committed_at = $4, updated_at = now()
      WHERE slot_name = $1`;
  }

  get inTransaction(): boolean {
    return this.open;
  }

  /** Inserts rows (opening a transaction if needed); returns how many were new. */
  async insert(rows: readonly ChangeRow[]): Promise<number> {
    if (rows.length === 0) return 0;
    if (!this.open) {
      await this.client.query('BEGIN');
      this.open = true;
    }
    await this.client.query('SAVEPOINT bemi_batch');
    try {
      const copy = this.client.query(copyFrom(this.copySql));
      await pipeline(Readable.from([copyText(rows, this.ids)]), copy);
      await this.client.query('RELEASE SAVEPOINT bemi_batch');
      return rows.length;
    } catch (e) {
      if ((e as { code?: string }).code !== '23505') throw e; // unique_violation: some rows are stored already
      await this.client.query('ROLLBACK TO SAVEPOINT bemi_batch');
    }
    return this.insertSkippingStored(rows);
  }

  private async insertSkippingStored(rows: readonly ChangeRow[]): Promise<number> {
    const n = rows.length;
    const cols: unknown[][] = Array.from({ length: 15 }, () => new Array(n));
    for (let i = 0; i < n; i++) {
      const r = rows[i];
      cols[0][i] = this.ids.next();
      cols[1][i] = r.primaryKey;
      cols[2][i] = r.before;
      cols[3][i] = r.after;
      cols[4][i] = r.context;
      cols[5][i] = r.database;
      cols[6][i] = r.schema;
      cols[7][i] = r.table;
      cols[8][i] = r.operation;
      cols[9][i] = r.committedAt;
      cols[10][i] = r.queuedAt;
      cols[11][i] = r.transactionId;
      cols[12][i] = r.position;
      cols[13][i] = r.commitPosition;
      cols[14][i] = r.seq;
    }
    return (await this.client.query(this.insertSql, cols)).rowCount ?? 0;
  }

  /** Commits the open transaction (if any), recording `position` in `_bemi_capture_state` with it. */
  async commit(position: StoredPosition | undefined): Promise<void> {
    if (!this.open) return;
    if (position) {
      await this.client.query(this.stateSql, [
        this.slotName,
        position.commitPosition.toString(),
        position.commitEndPosition.toString(),
        position.committedAt,
      ]);
    }
    this.open = false;
    await this.client.query('COMMIT');
  }

  async rollback(): Promise<void> {
    if (!this.open) return;
    this.open = false;
    await this.client.query('ROLLBACK');
  }
}

/** Rows in COPY's text format: tab-separated, `\N` for NULL, backslash escapes. */
function copyText(rows: readonly ChangeRow[], ids: UuidV7Generator): string {
  let out = '';
  for (const r of rows) {
    out +=
      `${ids.next()}\t${r.primaryKey === null ? '\\N' : esc(r.primaryKey)}\t${esc(r.before)}\t${esc(r.after)}\t${esc(r.context)}\t${esc(r.database)}\t` +
      `${esc(r.schema)}\t${esc(r.table)}\t${r.operation}\t${r.committedAt}\t${r.queuedAt}\t${r.transactionId}\t${r.position}\t${r.commitPosition}\t${r.seq}\n`;
  }
  return out;
}

const SPECIAL = /[\\\t\n\r]/;
function esc(value: string): string {
  if (!SPECIAL.test(value)) return value;
  return value.replace(/\\/g, '\\\\').replace(/\t/g, '\\t').replace(/\n/g, '\\n').replace(/\r/g, '\\r');
}
