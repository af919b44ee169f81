// The public API of nestjs-bemi, listed name by name: anything not exported here is internal and
// may change in any release. Renamed names stay as deprecated aliases for one minor release.

// ---- module and context ---------------------------------------------------------------------
/** The dynamic module: `BemiModule.forRoot(options)` / `forRootAsync(...)`. */
export { BemiModule } from './bemi.module';
/** Injection token of the options as given to `forRoot`/`forRootAsync` (before validation). */
export { BEMI_MODULE_OPTIONS } from './bemi.module-definition';
/** What `BemiModule.forRootAsync()` takes. */
export type { BemiModuleAsyncOptions } from './bemi.module-definition';
/** Options of `BemiModule.forRoot()`, a context object, and the per-request context factory. */
export type { BemiContextFactory, BemiContextValue, BemiModuleOptions } from './options/bemi-options.interfaces';
/** Sets or scopes context from code: `bemi.set({ ... })`, `bemi.run(context, fn)`. */
export { BemiService } from './bemi.service';
/** Handler/controller decorator adding static or computed context. */
export { BemiContext, type BemiContextDefinition } from './context/bemi-context.decorator';
/** The global interceptor that fills the context from each request (registered by the module). */
export { BemiContextInterceptor } from './context/bemi-context.interceptor';
/** Where the current context lives (one key in the nestjs-cls store). */
export { BemiContextStore } from './context/bemi-context.store';

// ---- options, defaults and errors -------------------------------------------------------------
/** The base class of every error nestjs-bemi throws on purpose; `fix` says what to do. */
export { BemiError } from './shared/bemi-error';
/** A wrong `BemiModule` option, named with its fix. */
export { BemiOptionsError } from './options/bemi-options.validator';
/** Default upper bound of one encoded context, in bytes. */
export { DEFAULT_MAX_CONTEXT_SIZE } from './options/defaults';
/** Context keys whose values are masked by default (`redactContextKeys`). */
export { DEFAULT_REDACTED_CONTEXT_KEYS } from './options/defaults';
/** Prefix of the transactional logical messages the trigger emits. */
export { BEMI_MESSAGE_PREFIX } from './shared/wire-format';

// ---- the ORM hook -----------------------------------------------------------------------------
/** Attaches the context to every DML statement of a MikroORM instance (the module does it for you). */
export { installBemiQueryHook, type BemiQueryHookOptions } from './orm/bemi-query-hook';
/** The context as the hook sends it: JSON with unserialisable values converted. */
export { encodeContext } from './orm/context-encoder';

// ---- redaction and ignore rules ---------------------------------------------------------------
/** Entity decorator: leave a table, or a property, out of the trail. */
export { BemiIgnore } from './rules/bemi-ignore.decorator';
/** Property decorator: store a mask (or an HMAC) instead of the value. */
export { BemiRedact } from './rules/bemi-redact.decorator';
/** Entity decorator: record only these properties of the table. */
export { BemiOnly } from './rules/bemi-only.decorator';
/** Rules in options form (`BemiModule.forRoot({ rules })`, the CLI's `--rules` file). */
export type { BemiRedactMode, BemiRules, BemiTableRule } from './rules/rules.interfaces';
/** A wrong rule, named with its path and fix. */
export { BemiRulesError } from './rules/rules-compiler';
/** Values stored in place of redacted ones: the mask, the mask of an old value, the HMAC prefix. */
export { HMAC_PREFIX, REDACTED_OLD_VALUE, REDACTED_VALUE } from './rules/rules.constants';

// ---- the trigger migration and the trail's DDL -------------------------------------------------
/** SQL (up/down) of the statement-level context triggers, and the names of what it creates. */
export { BEMI_SQL_OBJECTS, bemiMigrationSql, type BemiMigrationSqlOptions } from './migration/bemi-migration-sql';
/** A MikroORM migration file with that SQL (what the schematic and `migration:create` write). */
export { renderBemiMigrationFile, type BemiMigrationFileOptions } from './migration/migration-file';
/** DDL of `changes` and `_bemi_capture_state`, and of a month partition of `changes`. */
export { bemiChangesPartitionSql, bemiChangesTableSql, type ChangesTableSqlOptions } from './trail/changes-table';
/** The trail append-only for the application: owned by the capture role, SELECT for readers; or a guard for one-role setups (docs/security.md). */
export { bemiAppendOnlyGuardSql, bemiTrailRolesSql, type TrailRolesSqlOptions } from './trail/append-only';
/** Names of the trail's tables. */
export { CAPTURE_STATE_TABLE, CHANGES_TABLE } from './trail/changes-table';
/** Stored in `after` for a TOASTed column an UPDATE did not change and the WAL did not carry. */
export { UNCHANGED_TOAST_MARKER } from './trail/json-values';

// ---- change capture ---------------------------------------------------------------------------
/** Runs the capture worker with the application (`forRoot({ capture })`); status, lag, metrics. */
export { BemiCaptureService } from './capture/capture.service';
/** The capture worker itself, for use outside Nest: `BemiCaptureWorker.fromOptions({ source }).start()`. */
export { BemiCaptureWorker, type CaptureStatus } from './capture/capture.worker';
/** Capture options as written, the log sink, and the options after validation. */
export type { BemiCaptureOptions, CaptureLogger, ResolvedCaptureOptions } from './options/capture-options';
/** Capture's `chain` option as written (docs/verify.md). */
export type { BemiChainOption } from './options/chain-options';
/** What a chain link covers, and the table where retention records where it cut the chain. */
export { CHAINED_COLUMNS, type ChainedColumn } from './trail/change-chain';
export { CHAIN_ANCHOR_TABLE } from './trail/chain-anchor';
/** A wrong capture option, named. */
export { BemiCaptureOptionsError } from './options/capture-options';
/** The source or destination cannot be captured as configured (wal_level, rights, slot in use, ...). */
export { BemiCaptureSetupError } from './capture/source-setup';
/** Figures of `BemiCaptureService.metrics()`. */
export type { BemiCaptureMetrics } from './capture/capture-metrics';

// ---- health -----------------------------------------------------------------------------------
/** A `@nestjs/terminus` indicator: up while capture keeps up. */
export { BemiHealthIndicator } from './health/bemi-health.indicator';
/** Its thresholds and its result shape. */
export type { BemiHealthResult, BemiHealthThresholds } from './health/health.interfaces';

// ---- history and time travel ------------------------------------------------------------------
/** Reads the trail: `changes()`, `at()`, `tableAt()`, `diff()`, reverts. */
export { BemiHistory } from './history/bemi-history';
/** A MikroORM entity mapped onto `changes`, for your own queries. */
export { BemiChange } from './history/bemi-change.entity';
/** Options and result types of `BemiHistory`. */
export type {
  BemiHistoryOptions,
  ChangeOperation,
  ChangesQuery,
  HistoryChange,
  HistoryDiff,
  HistoryInstant,
  HistoryTarget,
  RevertOptions,
  TableAtOptions,
} from './history/history.interfaces';
/** `BemiHistory.verify()`: its options, result and the chain's heads, anchors and breaks (docs/verify.md). */
export type {
  TrailBreakKind,
  TrailChainAnchor,
  TrailChainBreak,
  TrailChainHead,
  TrailPosition,
  TrailVerifyCounts,
  TrailVerifyOptions,
  TrailVerifyProgress,
  TrailVerifyResult,
} from './history/trail-verify.interfaces';
/** Typed history errors: the family, a bad argument, an unknown entity, a moment before capture, ... */
export {
  BemiBeforeCaptureError,
  BemiBeforeHorizonError,
  BemiChangeNotFoundError,
  BemiHistoryArgumentError,
  BemiHistoryError,
  BemiHistoryUnavailableError,
  BemiRevertConflictError,
  BemiRevertOrderError,
  BemiRevertUncheckableError,
  BemiRevertUnsupportedError,
  BemiUnknownEntityError,
} from './history/history.errors';

// ---- retention --------------------------------------------------------------------------------
/** Runs pruning with the application (`forRoot({ retention })`), or now with `prune()`. */
export { BemiRetentionService } from './retention/retention.service';
/** Retention options as written. */
export type { BemiRetentionOptions } from './options/retention-options';
/** A wrong retention option or duration, named with its fix. */
export { BemiRetentionOptionsError, parseRetentionDuration } from './options/duration';
/** Prunes a trail outside Nest (what `npx nestjs-bemi prune` runs), and its result types. */
export {
  pruneChanges,
  type PruneChangesOptions,
  type PrunePartitionResult,
  type PruneResult,
  type PruneTableResult,
  type RetentionLogger,
} from './retention/prune-changes';

// ---- deprecated aliases (removed in 1.0) -------------------------------------------------------
/** @deprecated Renamed `BemiCaptureWorker` (every public class has the `Bemi` prefix). */
export { BemiCaptureWorker as CaptureWorker } from './capture/capture.worker';
/** @deprecated Use `BemiCaptureWorker.fromOptions(options)`; the worker validates its options itself. */
export { resolveCaptureOptions } from './options/capture-options';
