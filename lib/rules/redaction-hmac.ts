import { createHmac } from 'node:crypto';
import { HMAC_PREFIX } from './rules.constants';

/**
 * The stored form of an HMAC-redacted value: `hmac-sha256:<hex>` of the value's text as pgoutput
 * prints it. The capture writes it and revert recomputes it from the live row, so both call this.
 */
export function redactionHmac(key: string, text: string): string {
  return HMAC_PREFIX + createHmac('sha256', key).update(text, 'utf8').digest('hex');
}
