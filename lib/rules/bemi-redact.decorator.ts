import type { BemiRedactMode } from './rules.interfaces';
import { setColumnRule } from './column-rule.metadata';

/**
 * On an entity property: record that the column changed, never its value. Stored as `"[REDACTED]"`
 * (`mask`) or as a keyed HMAC (`hmac`, needs `rules.hmacKey`). Without a mode, `rules.redactMode`
 * applies (default `mask`).
 */
export function BemiRedact(mode?: BemiRedactMode): PropertyDecorator {
  if (mode !== undefined && mode !== 'mask' && mode !== 'hmac') {
    throw new Error(`@BemiRedact() mode must be 'mask' or 'hmac', got ${JSON.stringify(mode)}.`);
  }
  return (target: object, property: string | symbol) => setColumnRule(target, property, mode ?? 'default');
}
