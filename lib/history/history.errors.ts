import { BemiError } from '../shared/bemi-error';

/**
 * Typed errors of the history API. Every one extends `BemiHistoryError`, so callers can catch
 * the family, and carries the facts as properties (not only in the message) so an HTTP layer
 * can turn them into a 400/404/409 without parsing text.
 */
export class BemiHistoryError extends BemiError {
  constructor(message: string, fix = '') {
    super(message, fix);
  }
}

/** A bad argument: the message and `argument` name the parameter that was wrong. */
export class BemiHistoryArgumentError extends BemiHistoryError {
  constructor(
    readonly method: string,
    readonly argument: string,
    problem: string,
    fix = '',
  ) {
    super(`BemiHistory.${method}(): argument "${argument}" ${problem}`, fix);
  }
}

/** The entity class or table name is neither known to MikroORM nor an existing table. */
export class BemiUnknownEntityError extends BemiHistoryArgumentError {
  constructor(method: string, readonly entity: string, hint: string) {
    super(method, 'entity', `is not a known entity or table: ${entity}`, hint);
  }
}

/** Time travel to a moment before capture started: the trail cannot know that state. */
export class BemiBeforeCaptureError extends BemiHistoryArgumentError {
  constructor(
    method: string,
    argument: string,
    readonly requested: string,
    readonly captureStartedAt: string | null,
  ) {
    super(
      method,
      argument,
      captureStartedAt
        ? `is ${requested}, before change capture started (${captureStartedAt}); states before that moment were never recorded.`
        : `is ${requested}, but change capture has not started for this database (no row in the capture state table), so no past state can be reconstructed.`,
      captureStartedAt
        ? `Ask for a moment at or after ${captureStartedAt}.`
        : 'Start change capture (BemiModule.forRoot({ capture }) or npx nestjs-bemi capture --database-url ...), then ask for a moment after it started.',
    );
  }
}

/**
 * The trail cannot answer: e.g. the table was truncated after the requested moment, and rows
 * that were never changed before that TRUNCATE left no image anywhere.
 */
export class BemiHistoryUnavailableError extends BemiHistoryError {}

/** No change with that id (or cursor) in the changes table. */
export class BemiChangeNotFoundError extends BemiHistoryError {
  constructor(readonly changeId: string) {
    super(`No change with id ${changeId} in the changes table.`, 'Pass the id (or cursor) of a stored change, as HistoryChange.id returns it.');
  }
}

/** A revert was refused because the row no longer is what the change left behind. */
export class BemiRevertConflictError extends BemiHistoryError {
  constructor(
    readonly changeId: string,
    readonly table: string,
    readonly primaryKey: string | null,
    reason: string,
  ) {
    super(
      `Cannot revert change ${changeId} on ${table} (primary key ${primaryKey}): ${reason} Nothing was reverted.`,
      'Look at what changed it since (changes() of the record) and revert that change first, or write the correction yourself.',
    );
  }
}

/** A change that cannot be inverted (TRUNCATE, or a before image without the needed columns). */
export class BemiRevertUnsupportedError extends BemiHistoryError {
  constructor(
    readonly changeId: string,
    reason: string,
  ) {
    super(`Cannot revert change ${changeId}: ${reason} Nothing was reverted.`, 'Restore the row with your own write (at() gives its past state where the trail has it).');
  }
}
