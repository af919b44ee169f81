// The public API of nestjs-bemi: context (module, service, decorator), the trigger migration,
// redaction rules, change capture and history. Anything not exported here is internal.
export { BemiModule } from './bemi.module';
export { BemiService } from './bemi.service';
export { BemiContext, type BemiContextDefinition } from './context/bemi-context.decorator';
export { BemiContextInterceptor } from './context/bemi-context.interceptor';
export { BemiContextStore } from './context/bemi-context.store';
export { BEMI_MODULE_OPTIONS } from './bemi.module-definition';
export { BemiOptionsError } from './bemi-options.validator';
export {
  BEMI_CONTEXT_CLS_KEY,
  BEMI_MESSAGE_PREFIX,
  BEMI_RESOLVED_OPTIONS,
  DEFAULT_MAX_CONTEXT_SIZE,
} from './bemi.constants';
export type { BemiContextFactory, BemiContextValue, BemiModuleOptions } from './bemi.interfaces';
export { installBemiQueryHook, type BemiQueryHookOptions } from './orm/bemi-query-hook';
export { encodeContext } from './orm/context-encoder';
export { DEFAULT_REDACTED_CONTEXT_KEYS } from './context/context-redaction';
export * from './rules';
export { BEMI_SQL_OBJECTS, bemiMigrationSql, type BemiMigrationSqlOptions } from './migration/bemi-migration-sql';
export { renderBemiMigrationFile, type BemiMigrationFileOptions } from './migration/migration-file';
export { BemiCaptureService } from './capture/capture.service';
export { CaptureWorker, HEARTBEAT_MESSAGE_PREFIX, type CaptureStatus } from './capture/capture.worker';
export {
  BemiCaptureOptionsError,
  resolveCaptureOptions,
  type BemiCaptureOptions,
  type CaptureLogger,
  type ResolvedCaptureOptions,
} from './capture/capture-options';
export { BemiCaptureSetupError } from './capture/source-setup';
export { bemiChangesPartitionSql, bemiChangesTableSql, CAPTURE_STATE_TABLE, CHANGES_TABLE, type ChangesTableSqlOptions } from './capture/changes-table';
export { UNCHANGED_TOAST_MARKER } from './capture/json-values';
export * from './history';
export { BemiHealthIndicator } from './health/bemi-health.indicator';
export {
  BemiRetentionService,
  BemiRetentionOptionsError,
  parseRetentionDuration,
  pruneChanges,
  type BemiRetentionOptions,
  type PruneChangesOptions,
  type PrunePartitionResult,
  type PruneResult,
  type PruneTableResult,
  type RetentionLogger,
} from './retention';
export type { BemiCaptureMetrics, BemiHealthResult, BemiHealthThresholds } from './health/health.interfaces';
