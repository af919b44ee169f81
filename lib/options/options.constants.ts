/** Injection token of the validated, defaulted module options (`BemiResolvedOptions`). Internal. */
export const BEMI_RESOLVED_OPTIONS = Symbol('BEMI_RESOLVED_OPTIONS');
