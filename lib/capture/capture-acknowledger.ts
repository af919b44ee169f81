// The one place where positions are confirmed to the server. Exactly-once rests on one rule,
// "commit, then confirm": the slot may move past a change only once the destination transaction
// that stored it has committed, or when nothing received is still waiting to be stored. Every
// confirmation goes through this class, so the rule is kept (and checked) here alone.
import type { ChangesWriter, StoredPosition } from './changes-writer';
import type { Session } from './capture-shared';
import { formatLsn, parseLsn } from './lsn';

export class CaptureAcknowledger {
  /** Everything before this LSN is stored (or had nothing to store) and acknowledged to the server. */
  private confirmed = 0n;

  /**
   * @param nothingPending true when nothing received waits to be stored (`fromHandler`: asked by
   *   the handler of the message just received, which itself still counts as in flight)
   */
  constructor(private readonly nothingPending: (fromHandler: boolean) => boolean) {}

  get position(): bigint {
    return this.confirmed;
  }

  /** A new session resumes where the slot or the stored position says everything before is kept. */
  resumeAt(lsn: bigint): void {
    this.confirmed = lsn;
  }

  /**
   * Commits the writer's destination transaction (recording `position` with its rows) and only
   * then confirms the end of the stored transactions. `onCommitted` runs in between, so counters
   * never run ahead of what is committed.
   */
  async commitThenConfirm(session: Session, writer: ChangesWriter, position: StoredPosition, onCommitted: () => void): Promise<void> {
    await writer.commit(position);
    onCommitted();
    // Only now, with the rows committed, may the server forget them.
    this.confirm(session, position.commitEndPosition);
  }

  /** One of our heartbeat messages was decoded: with nothing pending, its position is safe to confirm. */
  heartbeatMessage(session: Session, lsn: string): void {
    if (this.nothingPending(true)) this.confirm(session, parseLsn(lsn));
  }

  keepalive(session: Session, lsn: string, replyRequested: boolean): void {
    if (session.failed) return;
    // A keepalive arrives after all data before its position; when all of it is stored, the slot
    // may move past WAL that had nothing for us (other databases, our own writes).
    if (this.nothingPending(false)) this.confirm(session, parseLsn(lsn));
    else if (replyRequested) this.confirm(session, this.confirmed);
  }

  /** Reports the confirmed position again: keeps the walsender's timeout at bay during long writes. */
  repeat(session: Session): void {
    this.confirm(session, this.confirmed);
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
}
