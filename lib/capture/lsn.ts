/**
 * Log sequence numbers as bigint. pg-logical-replication hands them out as text in two shapes
 * (`0/17FB108` on stream events, `00000000/017FB108` inside decoded messages); both parse here.
 */
export function parseLsn(text: string): bigint {
  const slash = text.indexOf('/');
  if (slash <= 0) throw new Error(`Not an LSN: ${JSON.stringify(text)}`);
  return (BigInt(`0x${text.slice(0, slash)}`) << 32n) | BigInt(`0x${text.slice(slash + 1)}`);
}

export function formatLsn(lsn: bigint): string {
  return `${(lsn >> 32n).toString(16).toUpperCase()}/${(lsn & 0xffffffffn).toString(16).toUpperCase()}`;
}
