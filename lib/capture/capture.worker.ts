import { Logger } from '@nestjs/common';
import { Client, type ClientConfig } from 'pg';
import { LogicalReplicationService, PgoutputPlugin, type Pgoutput } from 'pg-logical-replication';
import { resolveCaptureOptions, type BemiCaptureOptions, type CaptureLogger, type ResolvedCaptureOptions } from '../options/capture-options';
import { ChangesWriter, type StoredPosition } from './changes-writer';
import { UuidV7Generator } from './uuid-v7';
import { formatLsn, parseLsn } from './lsn';
import { PgoutputStitcher, type ChangeRow } from './pgoutput-stitcher';
import { describeRelation, waitUntilVisible } from './relation-catalog';
import { quoteIdent } from '../shared/sql-quote';
import { queriesInTurn } from './queries-in-turn';
import { installNewTablePublisher, type NewTablePublishing } from './new-table-publisher';
import {
  checkSchemas,
  checkSource,
  chooseDefaultSlot,
  ensureDestination,
  ensurePublication,
  ensureSlot,
  ensureStateRow,
  syncPublication,
  trackedTables,
  warnAboutTables,
} from './source-setup';

/** Prefix of the non-transactional messages the worker emits on an idle source. */
export const HEARTBEAT_MESSAGE_PREFIX = '_bemi_heartbeat';

/**
 * Session settings of the replication connection. pgoutput formats values with the walsender's
 * own settings, so they are pinned: ISO dates in UTC, hex bytea, shortest exact floats.
 */
const VALUE_FORMAT_OPTIONS = '-c datestyle=ISO,MDY -c timezone=UTC -c intervalstyle=postgres -c bytea_output=hex -c extra_float_digits=1';

export interface CaptureStatus {
  state: 'stopped' | 'starting' | 'streaming' | 'reconnecting';
  slotName: string;
  /** Rows inserted into `changes` by this worker (re-delivered rows that were already stored are not counted). */
  changesWritten: number;
  transactionsWritten: number;
  /** Everything before this LSN is stored (or had nothing to store) and acknowledged to the server. */
  confirmedPosition: string | null;
  lastCommittedAt: Date | null;
  /** WAL bytes between the server's current position and `confirmedPosition` (last measured). */
  lagBytes: number | null;
  /** 0 when every received transaction is stored; otherwise the age of the last stored commit. */
  lagSeconds: number;
  reconnects: number;
  lastError: string | null;
  /** Memory bound evidence: most rows ever held (waiting or being written), and most messages queued unhandled. */
  maxBufferedRows: number;
  maxQueuedMessages: number;
  /**
   * How tables created while the worker runs join its publication: 'event-trigger' (in the
   * creating transaction, nothing missed) or 'refresh' (within publicationRefreshMs; rows written
   * before that are not captured).
   */
  newTables: NewTablePublishing;
}

/** pgoutput with values kept as PostgreSQL's text, and message contents copied out of the socket buffer. */
class TextPgoutputPlugin extends PgoutputPlugin {
  constructor(
    options: ConstructorParameters<typeof PgoutputPlugin>[0],
    private readonly onReceived: () => void,
  ) {
    super(options);
  }

  override parse(buffer: Buffer): Pgoutput.Message {
    this.onReceived();
    const msg = super.parse(buffer);
    if (msg.tag === 'relation') {
      // The relation object is cached and reused for the tuples that follow: with text kept as
      // is, numeric/bigint keep their digits and timestamps their microseconds.
      for (const column of msg.columns) column.parser = keepText;
    } else if (msg.tag === 'message') {
      // The content is a view into a buffer the connection reuses for later data.
      msg.content = Buffer.from(msg.content);
    }
    return msg;
  }
}

const keepText = (text: string) => text;

type DataMessage = Pgoutput.Message;

/** One replication connection and everything that lives exactly as long as it. */
interface Session {
  service: LogicalReplicationService;
  source: Client;
  /** Two destination connections taking turns (see write()). */
  destinations: Client[];
  writers: ChangesWriter[];
  stitcher: PgoutputStitcher;
  /** XLogData messages parsed off the socket, and fully handled; equal when nothing is in flight. */
  received: number;
  handled: number;
  failed: boolean;
  fail(error: unknown): void;
  ended: Promise<Error | undefined>;
}

/**
 * Streams the source's WAL (pgoutput, with `_bemi` messages) into the `changes` table.
 *
 * Exactly once: rows carry (commit LSN, index in transaction), written with ON CONFLICT DO NOTHING;
 * the slot is acknowledged only up to the end of the last transaction whose rows are committed in
 * the destination. A crash anywhere therefore re-delivers at most what was not acknowledged, and
 * the unique key drops what was already stored.
 */
export class BemiCaptureWorker {
  private readonly logger: CaptureLogger;
  private state: CaptureStatus['state'] = 'stopped';
  private stopping = false;
  private session?: Session;
  private loopDone?: Promise<void>;
  private wakeBackoff?: () => void;
  private timers: NodeJS.Timeout[] = [];
  private lock: Promise<unknown> = Promise.resolve();
  private busy = false;
  /** The last destination write started; it ends after every earlier one (never rejects: a failure fails its session). */
  private writing: Promise<void> = Promise.resolve();
  /** Per destination connection, its last write. */
  private writerJobs: Promise<void>[] = [];
  /** The connection holding an open destination transaction (rows of an unfinished source transaction), or -1. */
  private openWriter = -1;
  private nextWriter = 0;
  private writesInFlight = 0;
  private rowsInFlight = 0;
  private lastYield = 0;
  private database = '';
  private newTables: NewTablePublishing = 'refresh';

  // Stream bookkeeping (reset per session).
  private pending: ChangeRow[] = [];
  /** Rows at the head of `pending` that belong to finished source transactions. */
  private completedRows = 0;
  /** The latest finished source transaction not yet committed in the destination. */
  private completed?: StoredPosition;
  private completedSince = 0;
  private completedTransactions = 0;
  private confirmed = 0n;
  private startedAt = Date.now();

  // Statistics.
  private changesWritten = 0;
  private transactionsWritten = 0;
  private lastCommittedAt: Date | null = null;
  private lagBytes: number | null = null;
  private reconnects = 0;
  private lastError: string | null = null;
  private maxBufferedRows = 0;
  private maxQueuedMessages = 0;
  private progressMark = { at: Date.now(), changes: 0 };

  /** The options, with the slot name settled: derived from the database at the first start when not given. */
  private options: ResolvedCaptureOptions & { slotName: string };
  private readonly slotNameGiven: boolean;

  constructor(options: ResolvedCaptureOptions) {
    this.logger = options.logger ?? new Logger('BemiCapture');
    this.slotNameGiven = options.slotName !== undefined;
    this.options = { ...options, slotName: options.slotName ?? '' };
  }

  /** A worker from options as a user writes them (validated here; `source` is required). */
  static fromOptions(options: BemiCaptureOptions): BemiCaptureWorker {
    return new BemiCaptureWorker(resolveCaptureOptions(options));
  }

  /**
   * Checks the source, prepares tables, publication and slot, and starts streaming. Rejects (with
   * a message that says what to fix) when the first connection or a check fails; after that,
   * lost connections are retried with backoff until `stop()`.
   */
  async start(): Promise<void> {
    if (this.state !== 'stopped') throw new Error('The capture worker is already running.');
    this.stopping = false;
    this.startedAt = Date.now();
    this.state = 'starting';
    try {
      await this.prepare(true);
      const first = await this.openSessionWhenSlotFree();
      this.loopDone = this.supervise(first);
    } catch (e) {
      this.state = 'stopped';
      throw e;
    }
    this.startTimers();
  }

  /** Stores and acknowledges every finished transaction received so far, then disconnects. */
  async stop(): Promise<void> {
    if (this.state === 'stopped') return;
    this.stopping = true;
    for (const t of this.timers) clearInterval(t);
    this.timers = [];
    this.wakeBackoff?.();
    const session = this.session;
    if (session && !session.failed) {
      await this.exclusive(async () => {
        await this.storeCompleted(session);
        await this.writing;
        for (const writer of session.writers) await writer.rollback(); // only ever rows of an unfinished transaction here
      }).catch((e) => this.logger.warn(`Could not store the last batch while stopping (it will be delivered again): ${message(e)}`));
      session.fail(undefined);
    }
    await this.loopDone;
    this.state = 'stopped';
  }

  status(): CaptureStatus {
    return {
      state: this.state,
      slotName: this.options.slotName,
      changesWritten: this.changesWritten,
      transactionsWritten: this.transactionsWritten,
      confirmedPosition: this.confirmed > 0n ? formatLsn(this.confirmed) : null,
      lastCommittedAt: this.lastCommittedAt,
      lagBytes: this.lagBytes,
      lagSeconds: this.caughtUp() ? 0 : Math.max(0, (Date.now() - (this.lastCommittedAt?.getTime() ?? this.startedAt)) / 1000),
      reconnects: this.reconnects,
      lastError: this.lastError,
      maxBufferedRows: this.maxBufferedRows,
      maxQueuedMessages: this.maxQueuedMessages,
      newTables: this.newTables,
    };
  }

  /** Measures the lag now: WAL bytes behind the server, and seconds behind the oldest unstored commit. */
  async lag(): Promise<{ bytes: number; seconds: number }> {
    await this.measureLag();
    const s = this.status();
    return { bytes: s.lagBytes ?? 0, seconds: s.lagSeconds };
  }

  // ---- setup ---------------------------------------------------------------------------------

  private async prepare(first: boolean): Promise<void> {
    await withClient(this.options.source, async (source) => {
      await checkSource(source);
      await checkSchemas(source, this.options.schemas);
      this.database = (await source.query<{ db: string }>('SELECT current_database() AS db')).rows[0].db;
      if (!this.slotNameGiven && this.options.slotName === '') {
        this.options = { ...this.options, slotName: await chooseDefaultSlot(async (sql) => (await source.query(sql)).rows) };
      }
      const o = this.options;
      await withClient(o.destination, (destination) => ensureDestination(destination, o));
      // The publication must exist before the slot: pgoutput looks it up as of each change. The
      // new-table publisher goes in before the tables are listed, so none created meanwhile is missed.
      await ensurePublication(source, o.publicationName);
      const publisher = await installNewTablePublisher(source, o);
      this.newTables = publisher.mode;
      if (first && publisher.mode === 'refresh') {
        this.logger.warn(
          `Could not install the event trigger that adds new tables to publication "${o.publicationName}" at once (${publisher.reason}). ` +
            `Tables created while the worker runs join it only at the next refresh (every ${o.publicationRefreshMs} ms): rows written to them before that are NOT captured. ` +
            `Run the worker once as a superuser (it installs the trigger, later runs may use a lesser role), or add each new table in the migration that creates it: ` +
            `ALTER PUBLICATION ${quoteIdent(o.publicationName)} ADD TABLE <table>;`,
        );
      }
      const tables = await trackedTables(source, o);
      if (first) warnAboutTables(tables, this.logger);
      await syncPublication(source, o.publicationName, tables);
      const created = await ensureSlot(source, o.slotName);
      if (created && !first) {
        this.logger.error(`Replication slot "${o.slotName}" had disappeared and was created again: changes committed while it was missing are not in the trail (started_at was reset).`);
      } else if (created) {
        this.logger.log(`Created replication slot "${o.slotName}"; capture starts now.`);
      }
      await withClient(o.destination, (destination) => ensureStateRow(destination, o.schema, o.slotName, this.database, created));
    });
  }

  // ---- sessions ------------------------------------------------------------------------------

  /**
   * A restarted worker may find its slot still held by the walsender of its previous process
   * (killed an instant ago); that one exits as soon as it notices, so wait for it briefly.
   */
  private async openSessionWhenSlotFree(): Promise<Session> {
    const deadline = Date.now() + 30_000;
    for (;;) {
      try {
        return await this.openSession();
      } catch (e) {
        if ((e as { code?: string }).code !== '55006' || Date.now() > deadline || this.stopping) throw e;
        await new Promise((r) => setTimeout(r, 200));
      }
    }
  }

  /** Connects and starts streaming; resolves once the server streams, rejects if it cannot. */
  private async openSession(): Promise<Session> {
    const o = this.options;
    // The previous session's last write fails with its connection, or commits: settled before
    // the resume position is read, so that position includes it.
    await this.writing;
    const source = queriesInTurn(new Client(o.source));
    const destinations = [new Client(o.destination), new Client(o.destination)];
    const [destination] = destinations;
    const clients = [source, ...destinations];
    // An idle client that loses its connection emits 'error': routed to the session once it exists.
    let onClientError: (e: Error) => void = () => undefined;
    for (const c of clients) c.on('error', (e) => onClientError(e));
    let resume: bigint;
    try {
      await source.connect();
      for (const d of destinations) await d.connect();
      resume = await this.resumePosition(source, destination);
    } catch (e) {
      await Promise.all(clients.map((c) => c.end().catch(() => undefined)));
      throw e;
    }
    await this.lock; // a handler of the previous session may still be unwinding
    this.resetStream(resume);

    const service = new LogicalReplicationService(replicationConfig(o.source), {
      // Acknowledgements are ours alone: no per-message auto acknowledge and no timer that would
      // confirm what was received but not stored.
      acknowledge: { auto: false, timeoutSeconds: 0 },
      // The stream pauses while a handler awaits a write: memory stays bounded.
      flowControl: { enabled: true },
    });
    let resolveEnded!: (e: Error | undefined) => void;
    const ended = new Promise<Error | undefined>((r) => (resolveEnded = r));
    const ids = new UuidV7Generator(); // one time order for every id either connection stores
    const session: Session = {
      service,
      source,
      destinations,
      writers: destinations.map((d) => new ChangesWriter(d, o.schema, o.slotName, ids)),
      stitcher: new PgoutputStitcher(this.database, o.rules),
      received: 0,
      handled: 0,
      failed: false,
      fail: (error: unknown) => {
        if (session.failed) return;
        session.failed = true;
        if (error !== undefined) this.lastError = message(error);
        resolveEnded(error === undefined ? undefined : toError(error));
      },
      ended,
    };
    onClientError = (e) => session.fail(e);
    service.on('error', (e: Error) => session.fail(e));
    service.on('data', (lsn: string, msg: DataMessage) => this.onData(session, lsn, msg));
    service.on('heartbeat', (lsn: string, _ts: number, reply: boolean) => this.onKeepalive(session, lsn, reply));

    const started = new Promise<void>((resolve, reject) => {
      service.once('start', () => resolve());
      void ended.then((e) => reject(e ?? new Error('stopped')));
    });
    const plugin = new TextPgoutputPlugin({ protoVersion: 1, publicationNames: [o.publicationName], messages: true }, () => {
      session.received++;
      this.maxQueuedMessages = Math.max(this.maxQueuedMessages, session.received - session.handled);
    });
    service
      .subscribe(plugin, o.slotName, formatLsn(resume))
      .then(() => session.fail(new Error('the server ended the replication stream')), (e) => session.fail(e));
    void ended.then(() => this.closeSession(session));
    this.session = session;
    try {
      await started;
    } catch (e) {
      await this.closeSession(session);
      throw e;
    }
    this.state = 'streaming';
    return session;
  }

  /** Where to resume: the later of the stored position and the slot's confirmed one. */
  private async resumePosition(source: Client, destination: Client): Promise<bigint> {
    const o = this.options;
    const slot = await source.query<{ lsn: string | null }>(`SELECT confirmed_flush_lsn::text AS lsn FROM pg_catalog.pg_replication_slots WHERE slot_name = $1`, [o.slotName]);
    const stored = await ensureStateRow(destination, o.schema, o.slotName, this.database, false);
    const confirmed = slot.rows[0]?.lsn ? parseLsn(slot.rows[0].lsn) : 0n;
    return stored !== null && stored > confirmed ? stored : confirmed;
  }

  private resetStream(resume: bigint): void {
    this.writerJobs = [];
    this.openWriter = -1;
    this.nextWriter = 0;
    this.pending = [];
    this.completedRows = 0;
    this.completed = undefined;
    this.completedTransactions = 0;
    this.confirmed = resume;
  }

  private async closeSession(session: Session): Promise<void> {
    await session.service.stop().catch(() => undefined);
    session.service.removeAllListeners();
    // Rolling back drops rows of transactions that were not acknowledged: they come again.
    await Promise.all([session.source, ...session.destinations].map((c) => c.end().catch(() => undefined)));
  }

  /** Runs sessions until stopped, reconnecting with exponential backoff. */
  private async supervise(first: Session): Promise<void> {
    let session: Session | undefined = first;
    let delay = this.options.reconnectDelayMs;
    while (!this.stopping) {
      if (session) {
        const error = await session.ended;
        await this.closeSession(session);
        session = undefined;
        if (this.stopping) break;
        this.logger.warn(`Replication stream lost (${message(error)}); reconnecting in ${delay} ms.`);
      }
      this.state = 'reconnecting';
      await new Promise<void>((resolve) => {
        const t = setTimeout(resolve, delay);
        this.wakeBackoff = () => {
          clearTimeout(t);
          resolve();
        };
      });
      if (this.stopping) break;
      this.reconnects++;
      try {
        await this.prepare(false);
        session = await this.openSession();
        this.logger.log(`Reconnected (attempt ${this.reconnects}); resuming at ${formatLsn(this.confirmed)}.`);
        delay = this.options.reconnectDelayMs;
      } catch (e) {
        this.lastError = message(e);
        this.logger.warn(`Reconnect failed (${message(e)}); retrying in ${Math.min(delay * 2, this.options.maxReconnectDelayMs)} ms.`);
        delay = Math.min(delay * 2, this.options.maxReconnectDelayMs);
      }
    }
    if (session) {
      // stop() came while a reconnect was completing
      session.fail(undefined);
      await this.closeSession(session);
    }
    this.session = undefined;
  }

  // ---- stream handling -----------------------------------------------------------------------

  /** Serializes handlers with timer work (batch flushes) and with stop(). */
  private exclusive<T>(fn: () => Promise<T>): Promise<T> {
    const run = this.lock.then(async () => {
      this.busy = true;
      try {
        return await fn();
      } finally {
        this.busy = false;
      }
    });
    this.lock = run.catch(() => undefined);
    return run;
  }

  private async onData(session: Session, lsn: string, msg: DataMessage): Promise<void> {
    if (session.failed) return;
    try {
      // Handlers that need no I/O chain on microtasks only, so replies of the write in flight
      // would wait until a whole received chunk is handled; letting the event loop in every
      // millisecond keeps that write moving (~15% more changes/s, see docs/benchmarks.md).
      if (this.writesInFlight > 0 && performance.now() - this.lastYield >= 1) {
        await new Promise<void>((resolve) => setImmediate(resolve));
        this.lastYield = performance.now();
      }
      await this.exclusive(() => this.handle(session, lsn, msg));
    } catch (e) {
      session.fail(e);
    } finally {
      // Counted once fully handled: received === handled then means nothing is in flight.
      session.handled++;
    }
  }

  private async handle(session: Session, lsn: string, msg: DataMessage): Promise<void> {
    if (session.failed) return;
    const { stitcher } = session;
    switch (msg.tag) {
      case 'begin':
        stitcher.begin(msg, new Date());
        return;
      case 'relation':
        // The relation may come from this very transaction: read the catalog once it shows it.
        if (stitcher.transactionId) await waitUntilVisible(session.source, stitcher.transactionId);
        stitcher.setRelation(msg.relationOid, await describeRelation(session.source, msg.relationOid));
        return;
      case 'message':
        if (stitcher.message(msg, msg.content as Buffer)) return;
        if (msg.prefix === HEARTBEAT_MESSAGE_PREFIX && !msg.transactional && this.idle(true)) this.confirm(session, parseLsn(lsn));
        return;
      case 'insert':
      case 'update':
      case 'delete':
      case 'truncate':
        for (const row of stitcher.change(lsn, msg)) this.pending.push(row);
        this.maxBufferedRows = Math.max(this.maxBufferedRows, this.pending.length + this.rowsInFlight);
        if (this.pending.length >= this.options.batchSize) await this.flushWithinTransaction(session);
        return;
      case 'commit': {
        const end = stitcher.commit(msg);
        if (!this.completed) this.completedSince = Date.now();
        this.completed = { commitPosition: parseLsn(msg.commitLsn!), commitEndPosition: end, committedAt: new Date(Number((msg.commitTime as bigint) / 1000n)).toISOString() };
        this.completedRows = this.pending.length;
        this.completedTransactions++;
        const caughtUp = session.received === session.handled + 1; // this commit is the last message received
        if (caughtUp || this.pending.length >= this.options.batchSize || Date.now() - this.completedSince >= this.options.maxBatchDelayMs) {
          await this.storeCompleted(session);
        }
        return;
      }
      default:
        return; // origin, type: nothing to store
    }
  }

  /** A batch is full inside a transaction: store finished transactions, then this one's rows so far. */
  private async flushWithinTransaction(session: Session): Promise<void> {
    await this.storeCompleted(session);
    // Rows of the unfinished transaction go into an open destination transaction; it commits
    // with the source transaction's COMMIT, so readers never see half of it.
    const batch = session.writers[0].prepare(this.pending);
    this.pending = [];
    await this.write(session, batch.rows.length, true, async (writer, previous) => {
      const written = await writer.insert(batch);
      await previous;
      this.changesWritten += written;
    });
  }

  /** Commits finished source transactions in the destination and acknowledges them. */
  private async storeCompleted(session: Session): Promise<void> {
    const position = this.completed;
    if (!position) return;
    const batch = session.writers[0].prepare(this.pending.slice(0, this.completedRows));
    this.pending = this.pending.slice(this.completedRows);
    this.completedRows = 0;
    this.completed = undefined;
    const transactions = this.completedTransactions;
    this.completedTransactions = 0;
    await this.write(session, batch.rows.length, false, async (writer, previous) => {
      const written = await writer.insert(batch);
      // Commits keep stream order: the stored position never passes rows not yet committed.
      await previous;
      if (session.failed) throw new Error('an earlier destination write failed');
      await writer.commit(position);
      this.changesWritten += written;
      this.transactionsWritten += transactions;
      this.lastCommittedAt = new Date(position.committedAt);
      // Only now, with the rows committed, may the server forget them.
      this.confirm(session, position.commitEndPosition);
    });
  }

  /**
   * Starts a destination write and returns without waiting for it, so the next batch is decoded
   * and stitched while the destination stores this one. Two destination connections take turns:
   * a batch's COPY runs while the previous batch is still being copied or committed on the other
   * one (the server then has a second backend to run it on; a commit waits for its fsync). Each
   * job gets the previous job's promise and finishes — commits — only after it, so commits stay
   * in stream order and `this.writing` settles after every write started. Rows continuing an open
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
    this.writesInFlight++;
    this.rowsInFlight += rows;
    const run = job(session.writers[index], previous)
      .catch((e) => session.fail(e))
      .finally(() => {
        this.writesInFlight--;
        this.rowsInFlight -= rows;
      });
    this.writerJobs[index] = run;
    this.writing = run;
  }

  /** No received transaction waits to be stored (for the lag in seconds). */
  private caughtUp(): boolean {
    const s = this.session;
    return (!s || (s.received === s.handled && !s.stitcher.inTransaction)) && this.pending.length === 0 && !this.completed && this.writesInFlight === 0;
  }

  /** Nothing received is waiting to be stored: a server position may be confirmed as is. */
  private idle(fromHandler = false): boolean {
    const s = this.session;
    return (
      !!s &&
      s.received === s.handled + (fromHandler ? 1 : 0) &&
      (fromHandler || !this.busy) &&
      this.pending.length === 0 &&
      !this.completed &&
      this.writesInFlight === 0 &&
      !s.stitcher.inTransaction &&
      !s.writers.some((w) => w.inTransaction)
    );
  }

  /**
   * Tells the server everything before `lsn` is stored. pg-logical-replication's acknowledge()
   * reports lsn + 1 as flushed, but a commit record may start exactly at the previous commit's
   * end, and the server skips transactions whose commit starts before the confirmed position:
   * so it is given lsn - 1.
   */
  private confirm(session: Session, lsn: bigint): void {
    if (lsn > this.confirmed) this.confirmed = lsn;
    if (this.confirmed > 0n && !session.failed) {
      session.service.acknowledge(formatLsn(this.confirmed - 1n)).catch(() => undefined);
    }
  }

  private onKeepalive(session: Session, lsn: string, replyRequested: boolean): void {
    if (session.failed) return;
    // A keepalive arrives after all data before its position; when all of it is stored, the slot
    // may move past WAL that had nothing for us (other databases, our own writes).
    if (this.idle()) this.confirm(session, parseLsn(lsn));
    else if (replyRequested) this.confirm(session, this.confirmed);
  }

  // ---- timers --------------------------------------------------------------------------------

  private startTimers(): void {
    const o = this.options;
    const every = (ms: number, fn: () => Promise<void>) => {
      if (ms <= 0) return;
      const t = setInterval(() => void fn().catch((e) => this.logger.warn(message(e))), ms);
      t.unref();
      this.timers.push(t);
    };
    every(o.heartbeatIntervalMs, () => this.heartbeat());
    every(Math.max(o.maxBatchDelayMs, 50), () => this.flushIfDue());
    // Lag warnings keep coming when progress lines are turned off: a stuck slot fills the disk.
    every(o.progressIntervalMs || 5000, () => this.progress(o.progressIntervalMs > 0));
    every(o.publicationRefreshMs, () => this.refreshPublication());
  }

  /** Finished transactions wait at most maxBatchDelayMs for company, even if the stream stalls. */
  private async flushIfDue(): Promise<void> {
    const session = this.session;
    if (!session || session.failed || !this.completed || Date.now() - this.completedSince < this.options.maxBatchDelayMs) return;
    await this.exclusive(() => this.storeCompleted(session)).catch((e) => session.fail(e));
  }

  private async heartbeat(): Promise<void> {
    const session = this.session;
    if (!session || session.failed) return;
    this.confirm(session, this.confirmed); // keeps the walsender's timeout at bay during long writes
    if (this.options.heartbeatMessages && this.idle()) {
      // Something of ours to decode on an otherwise quiet database: its position can be confirmed.
      await session.source.query(`SELECT pg_catalog.pg_logical_emit_message(false, $1, now()::text)`, [HEARTBEAT_MESSAGE_PREFIX]);
    }
  }

  private async measureLag(): Promise<void> {
    const session = this.session;
    if (!session || session.failed) return;
    const { rows } = await session.source.query<{ lsn: string }>(`SELECT pg_catalog.pg_current_wal_lsn()::text AS lsn`);
    const behind = parseLsn(rows[0].lsn) - this.confirmed;
    this.lagBytes = behind > 0n ? Number(behind) : 0;
  }

  private async progress(logProgress: boolean): Promise<void> {
    await this.measureLag();
    const now = Date.now();
    const s = this.status();
    const changes = this.changesWritten - this.progressMark.changes;
    const rate = changes / Math.max((now - this.progressMark.at) / 1000, 0.001);
    this.progressMark = { at: now, changes: this.changesWritten };
    const lag = `lag ${s.lagBytes ?? '?'} bytes, ${s.lagSeconds.toFixed(1)} s`;
    if ((s.lagBytes ?? 0) > this.options.lagWarningBytes || s.lagSeconds > this.options.lagWarningSeconds) {
      this.logger.warn(`Capture is falling behind: ${lag} (${Math.round(rate)} changes/s). The slot retains WAL until capture catches up; see docs/health.md.`);
    } else if (changes > 0 && logProgress) {
      this.logger.log(`Captured ${changes} changes (${Math.round(rate)}/s), ${this.changesWritten} in total; ${lag}.`);
    }
  }

  private async refreshPublication(): Promise<void> {
    const session = this.session;
    if (!session || session.failed) return;
    await syncPublication(session.source, this.options.publicationName, await trackedTables(session.source, this.options));
  }
}

function replicationConfig(source: ClientConfig): ClientConfig {
  return { ...source, options: [source.options, VALUE_FORMAT_OPTIONS].filter(Boolean).join(' ') };
}

async function withClient<T>(config: ClientConfig, fn: (client: Client) => Promise<T>): Promise<T> {
  const client = new Client(config);
  client.on('error', () => undefined); // surfaced through the failing query instead
  await client.connect();
  try {
    return await fn(client);
  } finally {
    await client.end().catch(() => undefined);
  }
}

function toError(e: unknown): Error {
  return e instanceof Error ? e : new Error(String(e));
}

function message(e: unknown): string {
  return e instanceof Error ? e.message : String(e);
}
