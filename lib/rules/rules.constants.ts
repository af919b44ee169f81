/** Reflect-metadata keys written by the rule decorators on entity classes. */
export const BEMI_IGNORE_TABLE_METADATA = 'nestjs-bemi:ignore-table';
export const BEMI_ONLY_METADATA = 'nestjs-bemi:only';
/** Map property name → treatment, on the entity class (prototype chain merged by the reader). */
export const BEMI_COLUMN_RULES_METADATA = 'nestjs-bemi:column-rules';

/** What a masked column value is stored as. */
export const REDACTED_VALUE = '[REDACTED]';
/**
 * Stored in `before` instead of {@link REDACTED_VALUE} when the UPDATE changed a masked value, so
 * that the change (not the value) stays visible: `diff()` shows `['[REDACTED:old]', '[REDACTED]']`.
 */
export const REDACTED_OLD_VALUE = '[REDACTED:old]';
/** Prefix of a stored HMAC: `hmac-sha256:<64 hex digits>`. */
export const HMAC_PREFIX = 'hmac-sha256:';

/** True for a value the capture stored in place of a redacted one (mask or HMAC). */
export function isRedactedValue(value: unknown): boolean {
  return (
    typeof value === 'string' &&
    (value === REDACTED_VALUE || value === REDACTED_OLD_VALUE || (value.startsWith(HMAC_PREFIX) && /^hmac-sha256:[0-9a-f]{64}$/.test(value)))
  );
}
