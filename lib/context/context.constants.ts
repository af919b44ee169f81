/** nestjs-cls store key under which the current Bemi context object lives. */
export const BEMI_CONTEXT_CLS_KEY = 'nestjs-bemi:context';

/** Metadata key written by `@BemiContext()`. */
export const BEMI_CONTEXT_METADATA = 'nestjs-bemi:context-metadata';
