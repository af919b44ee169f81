// The path from stitched rows to committed `changes` rows: rows wait here in batches, and each
// batch is written over one of two destination connections while the next one is decoded. Kept
// apart from the stream handler because its ordering rules (commits in stream order, at most three
// batches in memory) are what the exactly-once and memory guarantees stand on.
import type { CaptureAcknowledger } from './capture-acknowledger';
import type { CaptureCounters, Session } from './capture-shared';
import type { ChangesWriter, StoredPosition } from './changes-writer';
import type { ChangeRow } from './pgoutput-stitcher';
import type { SchemaLogEntry } from './schema-log';

export class WritePipeline {
  /** The last destination write started; it ends after every earlier one (never rejects: a failure fails its session). */
  private writing: Promise<void> = Promise.resolve();
  /** Per destination connection, its last write. */
  private writerJobs: Promise<void>[] = [];
  /** The connection holding an open destination transaction (rows of an unfinished source transaction), or -1. */
  private openWriter = -1;
  private nextWriter = 0;
  private writes = 0;
  private rowsInFlight = 0;

  private pending: ChangeRow[] = [];
  /** Schema log entries decoded since the last write: they go into the next one (see addSchemaEntry). */
  private pendingSchema: SchemaLogEntry[] = [];
  /** Rows at the head of `pending` that belong to finished source transactions. */
  private completedRows = 0;
  /** The latest finished source transaction not yet committed in the destination. */
  private completed?: StoredPosition;
  private completedSince = 0;
  private completedTransactions = 0;

  constructor(
    private readonly options: { batchSize: number; maxBatchDelayMs: number },
    private readonly acknowledger: CaptureAcknowledger,
    private readonly counters: CaptureCounters,
  ) {}

  /** Settles once every write started so far has committed or failed. */
  get settled(): Promise<void> {
    return this.writing;
  }

  get writesInFlight(): number {
    return this.writes;
  }

  /** No rows wait here and no write is in flight. */
  get empty(): boolean {
    return this.pending.length === 0 && this.pendingSchema.length === 0 && !this.completed && this.writes === 0;
  }

  /** Finished transactions have waited maxBatchDelayMs for company. */
  get due(): boolean {
    return !!this.completed && Date.now() - this.completedSince >= this.options.maxBatchDelayMs;
  }

  /** A new session starts from its resume position: nothing of the previous one is kept. */
  reset(): void {
    this.writerJobs = [];
    this.openWriter = -1;
    this.nextWriter = 0;
    this.pending = [];
    this.pendingSchema = [];
    this.completedRows = 0;
    this.completed = undefined;
    this.completedTransactions = 0;
  }

  /**
   * A schema log entry, stored in the destination transaction of its own source transaction's
   * rows (or of the batch that finishes it): never ahead of it. So the destination holds no entry
   * of a transaction that will be delivered again, which SchemaLog.inForce relies on.
   */
  addSchemaEntry(entry: SchemaLogEntry): void {
    this.pendingSchema.push(entry);
  }

  /** Entries of transactions up to `commitPosition` (all when undefined); they arrived in stream order. */
  private takeSchemaEntries(commitPosition?: bigint): SchemaLogEntry[] {
    const n = commitPosition === undefined ? this.pendingSchema.length : this.pendingSchema.findIndex((e) => e.commitPosition > commitPosition);
    const taken = n < 0 ? this.pendingSchema : this.pendingSchema.slice(0, n);
    this.pendingSchema = n < 0 ? [] : this.pendingSchema.slice(n);
    return taken;
  }

  /** Rows of a change in the open source transaction. */
  async add(session: Session, rows: ChangeRow[]): Promise<void> {
    for (const row of rows) this.pending.push(row);
    this.counters.maxBufferedRows = Math.max(this.counters.maxBufferedRows, this.pending.length + this.rowsInFlight);
    if (this.pending.length >= this.options.batchSize) await this.flushWithinTransaction(session);
  }

  /** The source transaction ended at `position`; `caughtUp`: its commit is the last message received. */
  async transactionEnded(session: Session, position: StoredPosition, caughtUp: boolean): Promise<void> {
    if (!this.completed) this.completedSince = Date.now();
    this.completed = position;
    this.completedRows = this.pending.length;
    this.completedTransactions++;
    if (caughtUp || this.pending.length >= this.options.batchSize || Date.now() - this.completedSince >= this.options.maxBatchDelayMs) {
      await this.storeCompleted(session);
    }
  }

  /** Stores every finished transaction and waits for all writes; only rows of an unfinished one are rolled back (they come again). */
  async drain(session: Session): Promise<void> {
    await this.storeCompleted(session);
    await this.writing;
    for (const writer of session.writers) await writer.rollback(); // only ever rows of an unfinished transaction here
  }

  /** Commits finished source transactions in the destination and acknowledges them. */
  async storeCompleted(session: Session): Promise<void> {
    const position = this.completed;
    if (!position) return;
    const batch = session.writers[0].prepare(this.pending.slice(0, this.completedRows), this.takeSchemaEntries(position.commitPosition));
    this.pending = this.pending.slice(this.completedRows);
    this.completedRows = 0;
    this.completed = undefined;
    const transactions = this.completedTransactions;
    this.completedTransactions = 0;
    await this.write(session, batch.rows.length, false, async (writer, previous) => {
      let written = await writer.insert(batch);
      // Commits keep stream order: the stored position never passes rows not yet committed.
      await previous;
      if (session.failed) throw new Error('an earlier destination write failed');
      written = await writer.joinChain(batch, written);
      await this.acknowledger.commitThenConfirm(session, writer, position, () => {
        this.counters.changesWritten += written;
        this.counters.transactionsWritten += transactions;
        this.counters.lastCommittedAt = new Date(position.committedAt);
      });
    });
  }

  /** A batch is full inside a transaction: store finished transactions, then this one's rows so far. */
  private async flushWithinTransaction(session: Session): Promise<void> {
    await this.storeCompleted(session);
    // Rows of the unfinished transaction go into an open destination transaction; it commits
    // with the source transaction's COMMIT, so readers never see half of it (nor its schema entries).
    const batch = session.writers[0].prepare(this.pending, this.takeSchemaEntries());
    this.pending = [];
    await this.write(session, batch.rows.length, true, async (writer, previous) => {
      let written = await writer.insert(batch);
      await previous;
      if (session.failed) throw new Error('an earlier destination write failed');
      written = await writer.joinChain(batch, written);
      this.counters.changesWritten += written;
    });
  }

  /**
   * Starts a destination write and returns without waiting for it, so the next batch is decoded
   * and stitched while the destination stores this one. Two destination connections take turns:
   * a batch's COPY runs while the previous batch is still being copied or committed on the other
   * one (the server then has a second backend to run it on; a commit waits for its fsync). Each
   * job gets the previous job's promise and finishes — commits — only after it, so commits stay
   * in stream order and `settled` settles after every write started. Rows continuing an open
   * destination transaction stay on its connection. A handler whose connection is still busy
   * waits here (the stream stays paused meanwhile): at most three batches are in memory.
   */
  private async write(session: Session, rows: number, keepOpen: boolean, job: (writer: ChangesWriter, previous: Promise<void>) => Promise<void>): Promise<void> {
    const index = this.openWriter >= 0 ? this.openWriter : this.nextWriter;
    await this.writerJobs[index];
    if (session.failed) return;
    if (this.openWriter < 0) this.nextWriter = (index + 1) % session.writers.length;
    this.openWriter = keepOpen ? index : -1;
    const previous = this.writing;
    this.writes++;
    this.rowsInFlight += rows;
    const run = job(session.writers[index], previous)
      .catch((e) => session.fail(e))
      .finally(() => {
        this.writes--;
        this.rowsInFlight -= rows;
      });
    this.writerJobs[index] = run;
    this.writing = run;
  }
}
