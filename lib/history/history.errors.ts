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
    fix = 'Restore the row with your own write (at() gives its past state where the trail has it).',
  ) {
    super(`Cannot revert change ${changeId}: ${reason} Nothing was reverted.`, fix);
  }
}

/**
 * The optimistic check cannot tell whether the row changed since: `columns` were recorded masked
 * (or as HMACs, without the key to recompute them), so their live values cannot be compared.
 */
export class BemiRevertUncheckableError extends BemiRevertUnsupportedError {
  constructor(
    changeId: string,
    readonly table: string,
    readonly columns: string[],
    readonly hmacKeyMissing: boolean,
  ) {
    super(
      changeId,
      `${table} column(s) ${columns.join(', ')} ${hmacKeyMissing ? 'were recorded as HMACs and no hmacKey was given' : 'were recorded masked (rules)'}, so whether the row changed since cannot be checked.`,
      hmacKeyMissing
        ? 'Give BemiHistory the key the capture hashes with (BemiModule.forRoot({ rules: { hmacKey } }) or BemiHistory.create(orm, { hmacKey })).'
        : 'Redact these columns with "hmac" instead of "mask" so that reverts can check them, or write the correction yourself.',
    );
  }
}

/**
 * The inverse statements of a transaction cannot be ordered so that every foreign key holds
 * after each one (rows that reference each other in a cycle), and the constraints involved are
 * not DEFERRABLE.
 */
export class BemiRevertOrderError extends BemiRevertUnsupportedError {
  constructor(
    changeId: string,
    readonly tables: string[],
    readonly constraints: string[],
  ) {
    super(
      changeId,
      `its transaction's rows in ${tables.join(', ')} reference each other in a cycle, so no order of the inverse statements satisfies the foreign key(s) ${constraints.join(', ')}, and they are not DEFERRABLE.`,
      `Make the foreign key(s) DEFERRABLE (ALTER TABLE ... ALTER CONSTRAINT ... DEFERRABLE), then revert again; or write the correction yourself.`,
    );
  }
}

/**
 * Retention deleted changes of the table committed up to `horizon`: for an earlier moment the
 * trail no longer holds every change after it, so its state cannot be told (like a moment before
 * capture started).
 */
export class BemiBeforeHorizonError extends BemiHistoryArgumentError {
  constructor(
    method: string,
    argument: string,
    readonly requested: string,
    readonly horizon: string,
    readonly table: string,
  ) {
    super(
      method,
      argument,
      `is ${requested}, before the retention horizon of ${table} (${horizon}): changes committed up to then were pruned, so the state at that moment can no longer be told.`,
      `Ask for a moment at or after ${horizon}, or keep this table's changes longer (retention maxAge / perTable).`,
    );
  }
}
