// Handles the replication stream's messages one at a time: stitches them into rows for the write
// pipeline and passes our heartbeat messages to the acknowledger. It owns the turn-taking lock
// (handlers, timer flushes and stop() never interleave) and so is the part that can tell whether
// anything received is still in flight.
import type { Pgoutput } from 'pg-logical-replication';
import type { CaptureAcknowledger } from './capture-acknowledger';
import { BEMI_SCHEMA_MESSAGE_PREFIX } from '../shared/wire-format';
import { HEARTBEAT_MESSAGE_PREFIX, type Session } from './capture-shared';
import { parseLsn } from './lsn';
import { describeRelation, waitUntilVisible } from './relation-catalog';
import type { WritePipeline } from './write-pipeline';

export class StreamHandler {
  private lock: Promise<unknown> = Promise.resolve();
  private busy = false;
  private lastYield = 0;

  constructor(
    private readonly pipeline: WritePipeline,
    private readonly acknowledger: CaptureAcknowledger,
    /** The session being streamed, if any. */
    private readonly current: () => Session | undefined,
  ) {}

  /** Settles when the last piece of exclusive work (a handler of a previous session, say) has unwound. */
  get settled(): Promise<unknown> {
    return this.lock;
  }

  /** Serializes handlers with timer work (batch flushes) and with stop(). */
  exclusive<T>(fn: () => Promise<T>): Promise<T> {
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

  async onData(session: Session, lsn: string, msg: Pgoutput.Message): Promise<void> {
    if (session.failed) return;
    try {
      // Handlers that need no I/O chain on microtasks only, so replies of the write in flight
      // would wait until a whole received chunk is handled; letting the event loop in every
      // millisecond keeps that write moving (~15% more changes/s, see docs/benchmarks.md).
      if (this.pipeline.writesInFlight > 0 && performance.now() - this.lastYield >= 1) {
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

  /** No received transaction waits to be stored (for the lag in seconds). */
  caughtUp(): boolean {
    const s = this.current();
    return (!s || (s.received === s.handled && !s.stitcher.inTransaction)) && this.pipeline.empty;
  }

  /** Nothing received is waiting to be stored: a server position may be confirmed as is. */
  idle(fromHandler = false): boolean {
    const s = this.current();
    return (
      !!s &&
      s.received === s.handled + (fromHandler ? 1 : 0) &&
      (fromHandler || !this.busy) &&
      this.pipeline.empty &&
      !s.stitcher.inTransaction &&
      !s.writers.some((w) => w.inTransaction)
    );
  }

  /** The schema log's shape of a relation for the changes of the open transaction that follow. */
  private shapeInForce(session: Session, relationOid: number) {
    const commitPosition = session.stitcher.commitPosition;
    if (!session.schemaLog || commitPosition === undefined) return undefined;
    return session.schemaLog.log.inForce(relationOid, commitPosition);
  }

  /** A table's new shape: known at once to the stitching that follows, and stored with this batch. */
  private schemaMessage(session: Session, msg: Pgoutput.MessageMessage): void {
    if (!session.schemaLog) return;
    const entry = session.stitcher.schemaEntry(msg, msg.content as Buffer);
    if (typeof entry === 'string') {
      session.schemaLog.invalid(entry, msg.messageLsn ?? '');
      return;
    }
    if (session.schemaLog.log.add(entry)) this.pipeline.addSchemaEntry(entry);
  }

  private async handle(session: Session, lsn: string, msg: Pgoutput.Message): Promise<void> {
    if (session.failed) return;
    const { stitcher } = session;
    switch (msg.tag) {
      case 'begin':
        stitcher.begin(msg, new Date());
        return;
      case 'relation':
        // The relation may come from this very transaction: read the catalog once it shows it.
        if (stitcher.transactionId) await waitUntilVisible(session.source, stitcher.transactionId);
        stitcher.setRelation(msg.relationOid, await describeRelation(session.source, msg, this.shapeInForce(session, msg.relationOid)));
        return;
      case 'message':
        if (stitcher.message(msg, msg.content as Buffer)) return;
        if (msg.prefix === BEMI_SCHEMA_MESSAGE_PREFIX && msg.transactional) this.schemaMessage(session, msg);
        else if (msg.prefix === HEARTBEAT_MESSAGE_PREFIX && !msg.transactional) this.acknowledger.heartbeatMessage(session, lsn);
        return;
      case 'insert':
      case 'update':
      case 'delete':
      case 'truncate':
        await this.pipeline.add(session, stitcher.change(lsn, msg));
        return;
      case 'commit': {
        const end = stitcher.commit(msg);
        const position = { commitPosition: parseLsn(msg.commitLsn!), commitEndPosition: end, committedAt: new Date(Number((msg.commitTime as bigint) / 1000n)).toISOString() };
        const caughtUp = session.received === session.handled + 1; // this commit is the last message received
        await this.pipeline.transactionEnded(session, position, caughtUp);
        return;
      }
      default:
        return; // origin, type: nothing to store
    }
  }
}
