export { BemiHistory } from './bemi-history.service';
export { BemiChange } from './bemi-change.entity';
export * from './history.errors';
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
} from './history.interfaces';
