/** nestjs-cls store key under which the current Bemi context object lives. */
export const BEMI_CONTEXT_CLS_KEY = 'nestjs-bemi:context';

/** Metadata key written by `@BemiContext()`. */
export const BEMI_CONTEXT_METADATA = 'nestjs-bemi:context-metadata';

/** Injection token of the validated, defaulted module options. */
export const BEMI_RESOLVED_OPTIONS = Symbol('BEMI_RESOLVED_OPTIONS');

/** Prefix of the transactional logical messages the trigger emits (Bemi's wire format). */
export const BEMI_MESSAGE_PREFIX = '_bemi';

/** Opening and closing markers of the SQL comment that carries the context (Bemi's wire format). */
export const BEMI_COMMENT_START = '/*Bemi ';
export const BEMI_COMMENT_END = ' Bemi*/';

/** Default upper bound for one encoded context, in bytes (UTF-8). */
export const DEFAULT_MAX_CONTEXT_SIZE = 1_000_000;
