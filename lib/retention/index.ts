export { BemiRetentionOptionsError, parseRetentionDuration } from './retention-duration';
export {
  DEFAULT_PRUNE_BATCH_SIZE,
  DEFAULT_RETENTION_INTERVAL_MS,
  MAX_PRUNE_BATCH_SIZE,
  resolveRetentionOptions,
  type BemiRetentionOptions,
  type ResolvedRetentionOptions,
} from './retention-options';
export { pruneChanges, type PruneChangesOptions, type PrunePartitionResult, type PruneResult, type PruneTableResult, type RetentionLogger } from './prune-changes';
export { BemiRetentionService, type RetentionModuleOptions } from './retention.service';
