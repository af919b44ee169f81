// The lifecycle of replication sessions: prepare the source and destination, connect, start
// streaming from the slot, and after a lost connection start again with backoff until stopped.
// Everything that exists once per connection is created and closed here; what happens to the
// messages in between is the stream handler's business.
import { Client, type ClientConfig } from 'pg';
import { LogicalReplicationService, type Pgoutput } from 'pg-logical-replication';
import type { CaptureLogger } from '../options/capture-options';
import { quoteIdent } from '../shared/sql-quote';
import type { CaptureAcknowledger } from './capture-acknowledger';
import { message, stitcherReports, toError, unstorableReport, type CaptureCounters, type CaptureStatus, type Session, type SettledCaptureOptions } from './capture-shared';
import { ChangesWriter } from './changes-writer';
import { formatLsn, parseLsn } from './lsn';
import { installEventTrigger, installNewTablePublisher, type NewTablePublishing } from './new-table-publisher';
import { SchemaLogTable, type SchemaLog } from './schema-log';
import { SCHEMA_LOG_TABLE } from '../trail/changes-table';
import { emitShapesSql, schemaRecorderName, schemaRecorderSql } from './schema-log.sql';
import { DEFAULT_CONTEXT_LIMITS } from './context-message';
import { PgoutputStitcher } from './pgoutput-stitcher';
import { readContextTrust, type ContextTrust } from './context-trust';
import { queriesInTurn } from './queries-in-turn';
import { replicationConfig, TextPgoutputPlugin } from './replication-connection';
import { checkSchemas, checkSource, chooseDefaultSlot, ensureDestination, ensurePublication, ensureSlot, ensureStateRow, syncPublication, trackedTables, warnAboutTables } from './source-setup';
import type { StreamHandler } from './stream-handler';
import { UuidV7Generator } from './uuid-v7';
import { ChainLinks, loadChainHead } from './chain-links';
import type { WritePipeline } from './write-pipeline';

export interface SupervisedParts {
  handler: StreamHandler;
  pipeline: WritePipeline;
  acknowledger: CaptureAcknowledger;
}

export class SessionSupervisor {
  private currentState: CaptureStatus['state'] = 'stopped';
  private stopping = false;
  private current?: Session;
  private loopDone?: Promise<void>;
  private wakeBackoff?: () => void;
  private database = '';
  private publishing: NewTablePublishing = 'refresh';
  /** Whether sessions read and fill the schema log (its event trigger is in place and the trail has its table). */
  private schemaLogging = false;
  /** Whose context is believed, read from the source at each session start (the stream may tighten it). */
  private trust?: ContextTrust;
  private readonly schemaLogTable: SchemaLogTable;

  /**
   * @param options settled in place: the slot name is derived from the database at the first
   *   start when not given, and every part reads this same object
   */
  constructor(
    private readonly options: SettledCaptureOptions,
    private readonly slotNameGiven: boolean,
    private readonly logger: CaptureLogger,
    private readonly counters: CaptureCounters,
    private readonly parts: SupervisedParts,
  ) {
    this.schemaLogTable = new SchemaLogTable(options.schema);
  }

  get state(): CaptureStatus['state'] {
    return this.currentState;
  }

  /** The session being streamed, if any. */
  get session(): Session | undefined {
    return this.current;
  }

  get newTables(): NewTablePublishing {
    return this.publishing;
  }

  /** Prepares and opens the first session (rejects if either fails), then supervises in the background. */
  async start(): Promise<void> {
    this.stopping = false;
    this.currentState = 'starting';
    try {
      await this.prepare(true);
      const first = await this.openSessionWhenSlotFree();
      this.loopDone = this.supervise(first);
    } catch (e) {
      this.currentState = 'stopped';
      throw e;
    }
  }

  /** Stores and acknowledges every finished transaction received so far, then disconnects. */
  async stop(): Promise<void> {
    this.stopping = true;
    this.wakeBackoff?.();
    const session = this.current;
    if (session && !session.failed) {
      const { handler, pipeline } = this.parts;
      await handler
        .exclusive(() => pipeline.drain(session))
        .catch((e) => this.logger.warn(`Could not store the last batch while stopping (it will be delivered again): ${message(e)}`));
      session.fail(undefined);
    }
    await this.loopDone;
    this.currentState = 'stopped';
  }

  private async prepare(first: boolean): Promise<void> {
    await withClient(this.options.source, async (source) => {
      await checkSource(source);
      await checkSchemas(source, this.options.schemas);
      this.database = (await source.query<{ db: string }>('SELECT current_database() AS db')).rows[0].db;
      if (!this.slotNameGiven && this.options.slotName === '') {
        this.options.slotName = await chooseDefaultSlot(async (sql) => (await source.query(sql)).rows);
      }
      const o = this.options;
      // One destination connection: the trail's tables, and what the schema log already holds.
      const logged = await withClient(o.destination, async (destination) => {
        await ensureDestination(destination, o);
        return (await this.schemaLogTable.exists(destination)) ? this.schemaLogTable.knownTables(destination, this.database) : undefined;
      });
      // The publication must exist before the slot: pgoutput looks it up as of each change. The
      // new-table publisher goes in before the tables are listed, so none created meanwhile is missed.
      await ensurePublication(source, o.publicationName);
      const publisher = await installNewTablePublisher(source, o);
      this.publishing = publisher.mode;
      if (first && publisher.mode === 'refresh') {
        this.logger.warn(
          `Could not install the event trigger that adds new tables to publication "${o.publicationName}" at once (${publisher.reason}). ` +
            `Tables created while the worker runs join it only at the next refresh (every ${o.publicationRefreshMs} ms): rows written to them before that are NOT captured. ` +
            `Run the worker once as a superuser (it installs the trigger, later runs may use a lesser role), or add each new table in the migration that creates it: ` +
            `ALTER PUBLICATION ${quoteIdent(o.publicationName)} ADD TABLE <table>;`,
        );
      }
      const recorder = await this.installSchemaRecorder(source, first, logged !== undefined);
      this.trust = await readContextTrust(source, o.trustedRoles, this.logger, first);
      const tables = await trackedTables(source, o);
      if (first) warnAboutTables(tables, this.logger);
      await syncPublication(source, o.publicationName, tables);
      const created = await ensureSlot(source, o.slotName);
      if (recorder) {
        // All of them when the trigger was missing until now (DDL made meanwhile went unrecorded).
        const missing = tables.map((t) => t.oid).filter((oid) => recorder === 'installed now' || !logged!.has(oid));
        // After the slot exists, so the messages are streamed.
        if (missing.length) {
          await source.query(emitShapesSql(), [missing]).catch((e: { code?: string }) => {
            if (e.code !== '42501') throw e;
            // PUBLIC lost pg_logical_emit_message to the trigger migration (docs/security.md).
            this.logger.warn(
              `This worker's role may not call pg_logical_emit_message, so ${missing.length} table(s) got no first schema log entry: until their next DDL, ` +
                `their keys are read from the catalog. Run the worker once as a superuser, or GRANT EXECUTE ON FUNCTION pg_logical_emit_message(boolean, text, text) TO <this role>.`,
            );
          });
        }
      }
      if (created && !first) {
        this.logger.error(`Replication slot "${o.slotName}" had disappeared and was created again: changes committed while it was missing are not in the trail (started_at was reset).`);
      } else if (created) {
        this.logger.log(`Created replication slot "${o.slotName}"; capture starts now.`);
      }
      await withClient(o.destination, (destination) => ensureStateRow(destination, o.schema, o.slotName, this.database, created));
    });
  }

  /**
   * Puts the schema log's event trigger in place when the role may and the trail has the log's
   * table; says once why not otherwise (keys of changes decoded after a key change may then be
   * unknown). 'installed now': it was missing, so DDL made meanwhile may have gone unrecorded.
   */
  private async installSchemaRecorder(source: Client, first: boolean, hasTable: boolean): Promise<'installed now' | 'in place' | undefined> {
    const o = this.options;
    const name = schemaRecorderName(o.publicationName);
    const present = (await source.query(`SELECT 1 FROM pg_catalog.pg_event_trigger WHERE evtname = $1`, [name])).rows.length > 0;
    const installed = hasTable ? await installEventTrigger(source, schemaRecorderSql(o).up, name) : { ok: false, reason: `the trail has no ${o.schema}.${SCHEMA_LOG_TABLE} table; run bemiChangesTableSql().up again (it is idempotent), or start once with ensureSchema: true` };
    this.schemaLogging = installed.ok;
    if (!installed.ok && first) {
      this.logger.warn(
        `The schema log is off (${installed.reason}). Capture then reads primary keys under REPLICA IDENTITY FULL from today's catalog: changes decoded after a ` +
          `key column was renamed, a primary key changed or a table was re-created are stored without their key (marked, and counted in status().unknownKeys). ` +
          `Run the worker once as a superuser to install its event trigger. See docs/capture.md, "Schema log".`,
      );
    }
    return installed.ok ? (present ? 'in place' : 'installed now') : undefined;
  }

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
    const { handler, pipeline, acknowledger } = this.parts;
    // The previous session's last write fails with its connection, or commits: settled before
    // the resume position is read, so that position includes it.
    await pipeline.settled;
    const source = queriesInTurn(new Client(o.source));
    const destinations = [new Client(o.destination), new Client(o.destination)];
    const [destination] = destinations;
    const clients = [source, ...destinations];
    // An idle client that loses its connection emits 'error': routed to the session once it exists.
    let onClientError: (e: Error) => void = () => undefined;
    for (const c of clients) c.on('error', (e) => onClientError(e));
    let resume: bigint;
    let shapes: SchemaLog | undefined;
    let chain: ChainLinks | undefined;
    try {
      await source.connect();
      for (const d of destinations) await d.connect();
      resume = await this.resumePosition(source, destination);
      shapes = this.schemaLogging ? await this.schemaLogTable.load(destination, this.database) : undefined;
      // After the previous session's writes settled: the chain goes on from what is stored.
      if (o.chain) chain = new ChainLinks(o.chain.key, await loadChainHead(destination, o.schema, this.database));
    } catch (e) {
      await Promise.all(clients.map((c) => c.end().catch(() => undefined)));
      throw e;
    }
    await handler.settled; // a handler of the previous session may still be unwinding
    pipeline.reset();
    acknowledger.resumeAt(resume);

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
    const schemaLog = this.schemaLogging ? { table: this.schemaLogTable, database: this.database } : undefined;
    const session: Session = {
      service,
      source,
      destinations,
      writers: destinations.map((d) => new ChangesWriter(d, o.schema, o.slotName, ids, unstorableReport(this.counters, this.logger), schemaLog, chain)),
      stitcher: new PgoutputStitcher(this.database, o.rules, DEFAULT_CONTEXT_LIMITS, stitcherReports(this.counters, this.logger), this.trust, o.contextPerRow),
      schemaLog: shapes && {
        log: shapes,
        invalid: (reason, position) => this.logger.warn(`A _bemi_schema message at ${position} was not used (${reason}); changes after it read their key from the catalog.`),
      },
      received: 0,
      handled: 0,
      failed: false,
      fail: (error: unknown) => {
        if (session.failed) return;
        session.failed = true;
        if (error !== undefined) this.counters.lastError = message(error);
        resolveEnded(error === undefined ? undefined : toError(error));
      },
      ended,
    };
    onClientError = (e) => session.fail(e);
    service.on('error', (e: Error) => session.fail(e));
    service.on('data', (lsn: string, msg: Pgoutput.Message) => handler.onData(session, lsn, msg));
    service.on('heartbeat', (lsn: string, _ts: number, reply: boolean) => acknowledger.keepalive(session, lsn, reply));

    const started = new Promise<void>((resolve, reject) => {
      service.once('start', () => resolve());
      void ended.then((e) => reject(e ?? new Error('stopped')));
    });
    const plugin = new TextPgoutputPlugin({ protoVersion: 1, publicationNames: [o.publicationName], messages: true }, () => {
      session.received++;
      this.counters.maxQueuedMessages = Math.max(this.counters.maxQueuedMessages, session.received - session.handled);
    });
    service
      .subscribe(plugin, o.slotName, formatLsn(resume))
      .then(() => session.fail(new Error('the server ended the replication stream')), (e) => session.fail(e));
    void ended.then(() => this.closeSession(session));
    this.current = session;
    try {
      await started;
    } catch (e) {
      await this.closeSession(session);
      throw e;
    }
    this.currentState = 'streaming';
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
    // Where the session began: one that failed before confirming anything (the same failure
    // again, e.g. a batch the destination refuses) waits twice as long as the one before it.
    let openedAt = this.parts.acknowledger.position;
    while (!this.stopping) {
      if (session) {
        const error = await session.ended;
        await this.closeSession(session);
        session = undefined;
        if (this.stopping) break;
        const progressed = this.parts.acknowledger.position > openedAt;
        if (progressed) delay = this.options.reconnectDelayMs;
        this.logger.warn(`Replication stream lost (${message(error)}); reconnecting in ${delay} ms.`);
      }
      this.currentState = 'reconnecting';
      await new Promise<void>((resolve) => {
        const t = setTimeout(resolve, delay);
        this.wakeBackoff = () => {
          clearTimeout(t);
          resolve();
        };
      });
      if (this.stopping) break;
      this.counters.reconnects++;
      try {
        await this.prepare(false);
        session = await this.openSession();
        openedAt = this.parts.acknowledger.position;
        this.logger.log(`Reconnected (attempt ${this.counters.reconnects}); resuming at ${formatLsn(openedAt)}.`);
        delay = Math.min(delay * 2, this.options.maxReconnectDelayMs);
      } catch (e) {
        this.counters.lastError = message(e);
        this.logger.warn(`Reconnect failed (${message(e)}); retrying in ${Math.min(delay * 2, this.options.maxReconnectDelayMs)} ms.`);
        delay = Math.min(delay * 2, this.options.maxReconnectDelayMs);
      }
    }
    if (session) {
      // stop() came while a reconnect was completing
      session.fail(undefined);
      await this.closeSession(session);
    }
    this.current = undefined;
  }
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
