// The wire format shared by the trigger (migration), the ORM hook and the capture worker. The
// comment is Bemi's format, so either side's ORM hooks work with the other's trigger.

/**
 * Prefix of the transactional logical messages the trigger emits. Their content is
 * `["<role>","<session role>"]`, a newline, then the context JSON (nothing: no context). Older
 * triggers emitted the context JSON alone.
 */
export const BEMI_MESSAGE_PREFIX = '_bemi';

/**
 * Prefix of the message the trigger migration emits in its own transaction: from there on, the
 * trigger sends context in format {@link CONTEXT_MESSAGE_VERSION}.
 */
export const BEMI_TRUST_MESSAGE_PREFIX = '_bemi_trust';
export const CONTEXT_MESSAGE_VERSION = 2;

/** Opening and closing markers of the SQL comment that carries the context. */
export const BEMI_COMMENT_START = '/*Bemi ';
export const BEMI_COMMENT_END = ' Bemi*/';

/**
 * Prefix of the transactional messages capture's event trigger emits after DDL on a captured
 * table: the table's new shape (see lib/capture/schema-log.ts). Never a context message.
 */
export const BEMI_SCHEMA_MESSAGE_PREFIX = '_bemi_schema';

/**
 * Prefix of an empty message the schema recorder emits after its shapes; capture ignores it. A
 * message is decoded at the LSN where it ends, which can be where the next row starts; in a
 * savepoint that tie let the decoder replay the row first. The shapes now end before this one.
 */
export const BEMI_SCHEMA_END_MESSAGE_PREFIX = '_bemi_schema_end';
