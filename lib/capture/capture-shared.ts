// What the parts of the capture worker share: the status they report, the record of one
// replication session, the settled options. It sits below every part, so that none of them has to
// import the worker facade (capture.worker.ts) that wires them together.
import type { Client } from 'pg';
import type { LogicalReplicationService } from 'pg-logical-replication';
import type { CaptureLogger, ResolvedCaptureOptions } from '../options/capture-options';
import type { ChangesWriter } from './changes-writer';
import type { NewTablePublishing } from './new-table-publisher';
import type { ChangeRow, PgoutputStitcher, StitcherReports } from './pgoutput-stitcher';
import type { SchemaLog } from './schema-log';

/** Prefix of the non-transactional messages the worker emits on an idle source. */
export const HEARTBEAT_MESSAGE_PREFIX = '_bemi_heartbeat';

/** The options, with the slot name settled: derived from the database at the first start when not given. */
export type SettledCaptureOptions = ResolvedCaptureOptions & { slotName: string };

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
  /** Context messages stored as the invalid-context marker (malformed, not an object, too large or too deep). */
  invalidContexts: number;
  /** Context messages not believed (their role is not trusted, or not the trigger's format), stored under "_bemi"."untrusted". */
  untrustedContexts: number;
  /** Changes stored without a primary key although their table has one (it could not be told; see docs/capture.md). */
  unknownKeys: number;
  /** Changes the destination refused, stored in their unstorable form (values as text, with the reason). */
  unstorableChanges: number;
  /** The last of those: its stream position (LSN, decimal) and the database's reason. */
  lastUnstorable: { position: string; reason: string } | null;
  /**
   * How tables created while the worker runs join its publication: 'event-trigger' (in the
   * creating transaction, nothing missed) or 'refresh' (within publicationRefreshMs; rows written
   * before that are not captured).
   */
  newTables: NewTablePublishing;
}

/** The counters behind status(); each part adds to its own. They outlive sessions. */
export class CaptureCounters {
  changesWritten = 0;
  transactionsWritten = 0;
  lastCommittedAt: Date | null = null;
  lagBytes: number | null = null;
  reconnects = 0;
  lastError: string | null = null;
  maxBufferedRows = 0;
  maxQueuedMessages = 0;
  invalidContexts = 0;
  untrustedContexts = 0;
  /** Reasons already logged for untrusted context (each is logged once per worker). */
  readonly untrustedReasons = new Set<string>();
  unknownKeys = 0;
  unstorableChanges = 0;
  lastUnstorable: { position: string; reason: string } | null = null;
}

/** One replication connection and everything that lives exactly as long as it. */
export interface Session {
  service: LogicalReplicationService;
  source: Client;
  /** Two destination connections taking turns (see WritePipeline.write()). */
  destinations: Client[];
  writers: ChangesWriter[];
  stitcher: PgoutputStitcher;
  /**
   * The schema log as stored when the session opened, plus what this session decoded; undefined
   * when the trail has no `_bemi_schema_log` table (keys then come from the catalog, as before).
   */
  schemaLog?: { log: SchemaLog; invalid(reason: string, position: string): void };
  /** XLogData messages parsed off the socket, and fully handled; equal when nothing is in flight. */
  received: number;
  handled: number;
  failed: boolean;
  fail(error: unknown): void;
  ended: Promise<Error | undefined>;
}

export function toError(e: unknown): Error {
  return e instanceof Error ? e : new Error(String(e));
}

export function message(e: unknown): string {
  return e instanceof Error ? e.message : String(e);
}

/** A change the destination refused, counted (status()) and logged; it was stored in its unstorable form. */
export function unstorableReport(counters: CaptureCounters, logger: CaptureLogger): (row: ChangeRow, reason: string) => void {
  return (row, reason) => {
    counters.unstorableChanges++;
    counters.lastUnstorable = { position: row.position, reason };
    logger.error(
      `The destination refused change ${row.commitPosition}/${row.seq} of ${row.schema}.${row.table} (${reason}); ` +
        `it is stored with its values as text under "_bemi".unstorable, and capture goes on. Please report it.`,
    );
  };
}

/** What the stitcher reports, counted (status()) and logged. */
export function stitcherReports(counters: CaptureCounters, logger: CaptureLogger): StitcherReports {
  return {
    invalidContext: (reason, lsn) => {
      counters.invalidContexts++;
      logger.warn(`A _bemi context message at ${lsn} was stored as the invalid-context marker {"_bemi":{"invalidContext":...}}: ${reason}.`);
    },
    untrustedContext: (reason, lsn) => {
      counters.untrustedContexts++;
      if (counters.untrustedReasons.has(reason) || counters.untrustedReasons.size >= 100) return;
      counters.untrustedReasons.add(reason);
      logger.warn(`A _bemi context message at ${lsn} was not believed (${reason}): its context is stored under "_bemi"."untrusted". Further ones like it are counted in status().untrustedContexts. See docs/security.md.`);
    },
    unknownKey: (problem, first) => {
      counters.unknownKeys++;
      if (first) logger.warn(`Changes are stored without a primary key: ${problem}. See docs/capture.md, "Schema changes".`);
    },
  };
}
