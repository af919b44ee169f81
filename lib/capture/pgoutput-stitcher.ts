import type { Pgoutput } from 'pg-logical-replication';
import { BEMI_MESSAGE_PREFIX, BEMI_TRUST_MESSAGE_PREFIX } from '../shared/wire-format';
import { UNCHANGED_TOAST_MARKER, valueToJson, type ValueKind } from '../trail/json-values';
import { DEFAULT_CONTEXT_LIMITS, parseContextMessage, untrustedContextJson, withContextMarker, type ContextLimits } from './context-message';
import { ContextTrust } from './context-trust';
import { lsnToDecimal, parseLsn } from './lsn';
import type { RelationInfo } from './relation-catalog';
import { parseTableShape, type SchemaLogEntry } from './schema-log';
import { RelationRules } from '../rules/relation-rules';
import type { ColumnTreatment, CompiledRules } from '../rules/rules.interfaces';

/** One row of the `changes` table, with every value already in the form the INSERT binds. */
export interface ChangeRow {
  primaryKey: string | null;
  /** The key before an UPDATE that changed it; null otherwise. */
  previousKey: string | null;
  before: string;
  after: string;
  context: string;
  /** The role the statement's session acted as (SET ROLE, else the login role); null when no trigger said. */
  role: string | null;
  /** The role that logged in; null when no trigger said. */
  sessionRole: string | null;
  database: string;
  schema: string;
  table: string;
  operation: 'CREATE' | 'UPDATE' | 'DELETE' | 'TRUNCATE';
  committedAt: string;
  queuedAt: string;
  transactionId: string;
  position: string;
  commitPosition: string;
  seq: number;
  /**
   * The seq of the row of this transaction that stores this row's context: its own for the first
   * row of a run of the transaction's rows of one table that share a context, that row's for the
   * rest (the writer stores their context as NULL). Undefined: the row stores its own context.
   */
  contextSeq?: number;
}

/** The context a row stores: none when another row of its transaction holds it (see ChangeRow.contextSeq). */
export function storedContext(r: ChangeRow): string | null {
  return r.contextSeq === undefined || r.contextSeq === r.seq ? r.context : null;
}

/** The transaction being stitched: what each of its changes shares. */
interface OpenTransaction {
  xid: string;
  /** Commit LSN as decimal text (the `commit_position` column). */
  commitPosition: string;
  committedAt: string;
  queuedAt: string;
  /** Context of the latest `_bemi` message so far (JSON text, `{}` for none). */
  context: string;
  /** Roles named by that message (null: none yet, or the old format). */
  role: string | null;
  sessionRole: string | null;
  seq: number;
  /** The row holding the context of the current run (see ChangeRow.contextSeq). */
  holder?: { context: string; schema: string; table: string; seq: number };
}

/**
 * Turns pgoutput messages of one replication session into `changes` rows. Synchronous and free of
 * I/O, so the consumer rule lives in one testable place: every change gets the context of the
 * latest `_bemi` message before it in its own transaction (`{}` after a reset, or when none came),
 * and its `seq` is its 0-based index among the row changes of the transaction.
 */
export class PgoutputStitcher {
  private tx?: OpenTransaction;
  private readonly relations = new Map<number, RelationInfo>();
  /** Redaction/ignore rules per relation: `null` = table ignored, undefined = none apply. */
  private readonly relationRules = new Map<number, RelationRules | null | undefined>();
  /** Per relation, how each column is encoded (built once per relation message, used per row). */
  private readonly codecs = new Map<number, ColumnCodec[]>();
  /** Relations whose rows, under the relation message in force, were already reported keyless (see RelationInfo.keyProblem). */
  private readonly reportedKeyless = new Set<number>();
  private lastMarked?: { context: string; problem: string; marked: string };

  constructor(
    private readonly database: string,
    private readonly rules?: CompiledRules,
    private readonly limits: ContextLimits = DEFAULT_CONTEXT_LIMITS,
    private readonly report: StitcherReports = {},
    /** Whose context is believed; by default any role's. */
    private readonly trust: ContextTrust = new ContextTrust(undefined, true),
    /** Every row stores its own context (the layout before context_seq). */
    private readonly contextPerRow = false,
  ) {}

  get inTransaction(): boolean {
    return this.tx !== undefined;
  }

  /** Source transaction id of the open transaction. */
  get transactionId(): string | undefined {
    return this.tx?.xid;
  }

  /** Commit LSN of the open transaction: with a change's LSN, its place in the stream. */
  get commitPosition(): bigint | undefined {
    return this.tx ? BigInt(this.tx.commitPosition) : undefined;
  }

  /** Catalog facts for a relation; must be set after its relation message, before its changes. */
  setRelation(relationOid: number, info: RelationInfo): void {
    this.relations.set(relationOid, info);
    this.reportedKeyless.delete(relationOid);
    this.relationRules.delete(relationOid);
    this.codecs.delete(relationOid);
  }

  begin(msg: Pgoutput.MessageBegin, receivedAt: Date): void {
    if (this.tx) throw new Error('pgoutput: BEGIN inside an open transaction');
    if (!msg.commitLsn) throw new Error('pgoutput: BEGIN without a commit LSN');
    this.tx = {
      xid: String(msg.xid >>> 0),
      commitPosition: lsnToDecimal(msg.commitLsn),
      committedAt: microsToIso(msg.commitTime as bigint),
      queuedAt: receivedAt.toISOString(),
      context: '{}',
      role: null,
      sessionRole: null,
      seq: 0,
    };
  }

  /** A logical message. Returns true when it was a context message (or the trigger migration's) of the open transaction. */
  message(msg: Pgoutput.MessageMessage, content: Buffer): boolean {
    if (!this.tx || !msg.transactional) return false;
    if (msg.prefix === BEMI_TRUST_MESSAGE_PREFIX) {
      this.trust.triggerUpgraded();
      return true;
    }
    if (msg.prefix !== BEMI_MESSAGE_PREFIX) return false;
    const { json, problem, roles } = parseContextMessage(content, this.limits);
    if (problem) this.report.invalidContext?.(problem, msg.messageLsn ?? '');
    const doubt = json === '{}' ? undefined : this.trust.doubt(roles);
    if (doubt) this.report.untrustedContext?.(doubt, msg.messageLsn ?? '');
    this.tx.context = doubt ? untrustedContextJson(json, doubt) : json;
    this.tx.role = roles?.role ?? null;
    this.tx.sessionRole = roles?.sessionRole ?? null;
    return true;
  }

  /**
   * The schema log entry of a `_bemi_schema` message of the open transaction (its place: the
   * transaction's commit LSN and the message's own LSN), or why it is not one.
   */
  schemaEntry(msg: Pgoutput.MessageMessage, content: Buffer): SchemaLogEntry | string {
    if (!this.tx || !msg.messageLsn) return 'a schema message outside a transaction';
    const shape = parseTableShape(content);
    if (typeof shape === 'string') return shape;
    return { ...shape, commitPosition: BigInt(this.tx.commitPosition), position: parseLsn(msg.messageLsn), committedAt: this.tx.committedAt };
  }

  /** Rows for one insert/update/delete/truncate message; `lsn` is the stream position of the change. */
  change(lsn: string, msg: Pgoutput.MessageInsert | Pgoutput.MessageUpdate | Pgoutput.MessageDelete | Pgoutput.MessageTruncate): ChangeRow[] {
    const tx = this.tx;
    if (!tx) throw new Error(`pgoutput: ${msg.tag} outside a transaction`);
    const position = lsnToDecimal(lsn);
    if (msg.tag === 'truncate') {
      const rows: ChangeRow[] = [];
      for (const relation of msg.relations) {
        // Ignored tables still take a seq, so positions never depend on the rules in force.
        if (RelationRules.isIgnoredTable(this.rules, relation.schema, relation.name)) tx.seq++;
        else rows.push(this.row(tx, position, relation, 'TRUNCATE', '{}', '{}', null));
      }
      return rows;
    }
    const info = this.relations.get(msg.relation.relationOid);
    if (!info) throw new Error(`pgoutput: no catalog information for relation ${msg.relation.schema}.${msg.relation.name}`);
    const rules = this.rulesOf(msg.relation, info);
    if (rules === null) {
      tx.seq++;
      return [];
    }
    const columns = this.codecsOf(msg.relation, info, rules);
    if (info.keyProblem) {
      const first = !this.reportedKeyless.has(msg.relation.relationOid);
      this.reportedKeyless.add(msg.relation.relationOid);
      this.report.unknownKey?.(info.keyProblem, first);
    }
    if (msg.tag === 'insert') {
      const after = encodeTuple(columns, msg.new, false, rules, 'after');
      return [this.row(tx, position, msg.relation, 'CREATE', '{}', after, primaryKeyOf(info, msg.new))];
    }
    if (msg.tag === 'update') {
      const old = msg.old ?? msg.key;
      if (msg.old && rules?.onlyIgnoredChanged(msg.old, msg.new)) {
        tx.seq++;
        return [];
      }
      const before = old ? encodeTuple(columns, old, msg.old === null, rules, 'before', msg.new) : '{}';
      const after = encodeTuple(columns, msg.new, false, rules, 'after');
      const key = primaryKeyOf(info, msg.new);
      // pgoutput sends the old key (or, under FULL, the old row) whenever the key changed.
      const oldKey = old ? primaryKeyOf(info, old) : null;
      return [this.row(tx, position, msg.relation, 'UPDATE', before, after, key, oldKey !== null && oldKey !== key ? oldKey : null)];
    }
    const old = (msg.old ?? msg.key)!;
    const before = encodeTuple(columns, old, msg.old === null, rules, 'before');
    return [this.row(tx, position, msg.relation, 'DELETE', before, '{}', primaryKeyOf(info, old))];
  }

  /** Closes the transaction; returns its commit end LSN, the position to acknowledge once stored. */
  commit(msg: Pgoutput.MessageCommit): bigint {
    if (!this.tx) throw new Error('pgoutput: COMMIT without BEGIN');
    if (!msg.commitEndLsn) throw new Error('pgoutput: COMMIT without an end LSN');
    this.tx = undefined;
    return parseLsn(msg.commitEndLsn);
  }

  /** Forgets the open transaction (after a lost connection the server sends it again). */
  reset(): void {
    this.tx = undefined;
  }

  /** `context` with `"_bemi": {"unknownKey": problem}` (the last context marked is remembered: rows of a statement share it). */
  private markedUnknownKey(context: string, problem: string): string {
    const last = this.lastMarked;
    if (last && last.context === context && last.problem === problem) return last.marked;
    const marked = withContextMarker(context, 'unknownKey', problem);
    this.lastMarked = { context, problem, marked };
    return marked;
  }

  /** The relation's rules (resolved once per relation message); null when the table is ignored. */
  private rulesOf(relation: Pgoutput.MessageRelation, info: RelationInfo): RelationRules | null | undefined {
    if (!this.rules) return undefined;
    if (this.relationRules.has(relation.relationOid)) return this.relationRules.get(relation.relationOid);
    const resolved = RelationRules.isIgnoredTable(this.rules, relation.schema, relation.name)
      ? null
      : RelationRules.resolve(this.rules, relation.schema, relation.name, relation.columns.map((c) => c.name), info.primaryKey);
    this.relationRules.set(relation.relationOid, resolved);
    return resolved;
  }

  private codecsOf(relation: Pgoutput.MessageRelation, info: RelationInfo, rules: RelationRules | undefined): ColumnCodec[] {
    let codecs = this.codecs.get(relation.relationOid);
    if (!codecs) {
      codecs = relation.columns.map(({ name }) => ({ name, label: `${JSON.stringify(name)}:`, kind: info.kinds.get(name) ?? 'string', treatment: rules?.treatment(name) }));
      this.codecs.set(relation.relationOid, codecs);
    }
    return codecs;
  }

  private row(
    tx: OpenTransaction,
    position: string,
    relation: Pgoutput.MessageRelation,
    operation: ChangeRow['operation'],
    before: string,
    after: string,
    primaryKey: string | null,
    previousKey: string | null = null,
  ): ChangeRow {
    const info = this.relations.get(relation.relationOid);
    // A table without the context trigger emitted nothing: the context and roles in force are another statement's.
    const triggered = info?.contextTrigger !== false;
    let context = triggered ? tx.context : '{}';
    // A key that could not be told is said in the row itself, not only in the logs.
    if (info?.keyProblem && operation !== 'TRUNCATE') context = this.markedUnknownKey(context, info.keyProblem);
    const seq = tx.seq++;
    let contextSeq: number | undefined;
    if (!this.contextPerRow) {
      // A run never crosses tables: retention deletes per table, and a holder must go with its run.
      const h = tx.holder;
      if (h && h.context === context && h.table === relation.name && h.schema === relation.schema) contextSeq = h.seq;
      else {
        tx.holder = { context, schema: relation.schema, table: relation.name, seq };
        contextSeq = seq;
      }
    }
    return {
      primaryKey,
      previousKey,
      before,
      after,
      context,
      role: triggered ? tx.role : null,
      sessionRole: triggered ? tx.sessionRole : null,
      database: this.database,
      schema: relation.schema,
      table: relation.name,
      operation,
      committedAt: tx.committedAt,
      queuedAt: tx.queuedAt,
      transactionId: tx.xid,
      position,
      commitPosition: tx.commitPosition,
      seq,
      contextSeq,
    };
  }
}

/**
 * JSON object text of a tuple, keyed by column name. pgoutput leaves a column `undefined` when it
 * is an unchanged TOASTed value it did not send (the client fills it from the old tuple when there
 * is one); such columns get {@link UNCHANGED_TOAST_MARKER}. In a key-only tuple (`keyOnly`), the
 * parser already dropped non-key columns. With `rules`, ignored columns are left out and redacted
 * ones masked (`other`: the new tuple, when encoding an UPDATE's old one).
 */
function encodeTuple(
  columns: readonly ColumnCodec[],
  tuple: Record<string, unknown>,
  keyOnly: boolean,
  rules: RelationRules | undefined,
  side: 'before' | 'after',
  other?: Record<string, unknown>,
): string {
  let out = '{';
  for (const { name, label, kind, treatment } of columns) {
    if (treatment === 'ignore' || (keyOnly && !(name in tuple))) continue;
    const value = tuple[name];
    let json: string;
    if (value === undefined) json = UNCHANGED_TOAST_JSON;
    else if (treatment) json = rules!.redactedJson(treatment, value as string | null, side, other?.[name]);
    else json = valueToJson(value as string | null, kind);
    out += out.length === 1 ? label + json : `,${label}${json}`;
  }
  return `${out}}`;
}

const UNCHANGED_TOAST_JSON = JSON.stringify(UNCHANGED_TOAST_MARKER);

/** How one column of a relation is written into `before`/`after`. */
interface ColumnCodec {
  name: string;
  /** `"name":`, the JSON key with its colon. */
  label: string;
  kind: ValueKind;
  treatment: ColumnTreatment | undefined;
}

/** Single key: its text. Composite: JSON array of the key values (encoded as in `after`). None: null. */
function primaryKeyOf(info: RelationInfo, tuple: Record<string, unknown>): string | null {
  const key = info.primaryKey;
  if (key.length === 0) return null;
  if (key.length === 1) {
    const value = tuple[key[0]];
    return typeof value === 'string' ? value : null;
  }
  const values = key.map((name) => tuple[name]);
  if (values.some((v) => typeof v !== 'string')) return null;
  return `[${values.map((v, i) => valueToJson(v as string, info.kinds.get(key[i]) ?? 'string')).join(',')}]`;
}

/** What the stitcher tells the worker (it stays free of I/O itself). */
export interface StitcherReports {
  /** A context message was replaced by the invalid-context marker, for `reason`. */
  invalidContext?(reason: string, position: string): void;
  /** A row is stored without its key (`first`: the first such row under this relation message). */
  unknownKey?(problem: string, first: boolean): void;
  /** A context message was not believed, for `reason`; it is stored under `"_bemi"."untrusted"`. */
  untrustedContext?(reason: string, position: string): void;
}

/** ISO 8601 text with all six fractional digits (commit times are microseconds since 1970). */
export function microsToIso(micros: bigint): string {
  const millis = micros / 1000n;
  const extra = (micros % 1000n).toString().padStart(3, '0');
  return new Date(Number(millis)).toISOString().replace('Z', `${extra}Z`);
}
