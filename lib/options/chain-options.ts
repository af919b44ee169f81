/** Capture's `chain` option: `true` (SHA-256 links) or `{ key }` (HMAC-SHA256 links). Off when absent or false. */
export type BemiChainOption = boolean | { key: string };

/** The chain as the worker runs it; undefined when off. */
export interface ResolvedChainOption {
  /** HMAC key; undefined: plain SHA-256. */
  key?: string;
}

/** Shortest key accepted: a short HMAC key can be guessed offline from the stored hashes. */
export const MIN_CHAIN_KEY_LENGTH = 16;

/** Validates `capture.chain`; `fail` throws capture's option error (capture-options.ts passes it, which keeps the two files out of an import cycle). */
export function checkChainOption(value: unknown, fail: (option: string, problem: string, fix: string) => never): ResolvedChainOption | undefined {
  if (value === undefined || value === false) return undefined;
  if (value === true) return {};
  if (!value || typeof value !== 'object' || Array.isArray(value)) {
    fail('chain', `must be true, false or { key: string }, got ${JSON.stringify(value)}`, 'Use chain: true for SHA-256 links, or chain: { key: process.env.BEMI_CHAIN_KEY } for keyed (HMAC-SHA256) links.');
  }
  for (const k of Object.keys(value)) {
    if (k !== 'key') fail(`chain.${k}`, 'is not a known option (known: key)', 'Remove it.');
  }
  const key = (value as { key?: unknown }).key;
  if (typeof key !== 'string' || key.length < MIN_CHAIN_KEY_LENGTH) {
    // The key itself is never echoed.
    fail(
      'chain.key',
      `must be a string of at least ${MIN_CHAIN_KEY_LENGTH} characters, got ${typeof key === 'string' ? `a string of ${key.length}` : typeof key}`,
      'Generate one (e.g. openssl rand -hex 32), keep it out of the database and give it to capture and verify alike; or use chain: true for unkeyed links.',
    );
  }
  return { key };
}
