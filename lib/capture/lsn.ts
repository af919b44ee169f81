const LSN = /^[0-9A-Fa-f]{1,8}\/[0-9A-Fa-f]{1,8}$/;

/**
 * Log sequence numbers as bigint. pg-logical-replication hands them out as text in two shapes
 * (`0/17FB108` on stream events, `00000000/017FB108` inside decoded messages); both parse here.
 */
export function parseLsn(text: string): bigint {
  if (!LSN.test(text)) throw new Error(`Not an LSN: ${JSON.stringify(text)}`);
  const slash = text.indexOf('/');
  return (BigInt(`0x${text.slice(0, slash)}`) << 32n) | BigInt(`0x${text.slice(slash + 1)}`);
}

export function formatLsn(lsn: bigint): string {
  return `${(lsn >> 32n).toString(16).toUpperCase()}/${(lsn & 0xffffffffn).toString(16).toUpperCase()}`;
}

/**
 * Decimal text of an LSN (the `position` columns), without a bigint while the value is below
 * 2^53 (8 PiB of WAL): this runs once per captured change.
 */
export function lsnToDecimal(text: string): string {
  if (!LSN.test(text)) throw new Error(`Not an LSN: ${JSON.stringify(text)}`);
  const slash = text.indexOf('/');
  const high = parseInt(text.slice(0, slash), 16);
  if (high < 0x200000) return String(high * 4294967296 + parseInt(text.slice(slash + 1), 16));
  return parseLsn(text).toString();
}
