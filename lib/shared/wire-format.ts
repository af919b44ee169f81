// The wire format shared by the trigger (migration), the ORM hook and the capture worker.
// It is Bemi's format, so trails written by either side can be read by the other.

/** Prefix of the transactional logical messages the trigger emits. */
export const BEMI_MESSAGE_PREFIX = '_bemi';

/** Opening and closing markers of the SQL comment that carries the context. */
export const BEMI_COMMENT_START = '/*Bemi ';
export const BEMI_COMMENT_END = ' Bemi*/';

/**
 * Prefix of the transactional messages capture's event trigger emits after DDL on a captured
 * table: the table's new shape (see lib/capture/schema-log.ts). Never a context message.
 */
export const BEMI_SCHEMA_MESSAGE_PREFIX = '_bemi_schema';
