import { DEFAULT_SCHEMA } from '../shared/postgres-names';
import { CAPTURE_STATE_TABLE, CHANGES_TABLE } from './changes-table';

/** Where the audit trail lives: read by history, retention and health, written by capture. */
export interface TrailLocation {
  /** Schema of the changes table and the capture state table. */
  schema: string;
  /** Name of the changes table. */
  table: string;
  /** Name of the capture state table (same schema). */
  captureStateTable: string;
  /** Value of `changes.database` for this application's writes; undefined: `current_database()`. */
  database?: string;
}

/** The module's `history` option: any part of the location, the rest defaulted. */
export type TrailLocationOptions = Partial<TrailLocation>;

export const TRAIL_LOCATION_KEYS = ['schema', 'table', 'captureStateTable', 'database'] as const;

/**
 * The trail by the options: what `history` names, else the capture schema (the worker writes
 * there), else `public`; tables `changes` and `_bemi_capture_state`.
 */
export function resolveTrailLocation(history: TrailLocationOptions | undefined, captureSchema?: string): TrailLocation {
  return {
    schema: history?.schema ?? captureSchema ?? DEFAULT_SCHEMA,
    table: history?.table ?? CHANGES_TABLE,
    captureStateTable: history?.captureStateTable ?? CAPTURE_STATE_TABLE,
    ...(history?.database !== undefined ? { database: history.database } : {}),
  };
}
