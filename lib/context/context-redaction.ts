/**
 * Context keys masked by default. A key is secret when, lower-cased and without `-`, `_`, `.` and
 * spaces, it contains one of these words: `accessToken`, `x-api-key`, `Authorization`,
 * `passwordConfirmation` all match. Masking a harmless key costs little; leaking a token into an
 * append-only audit trail cannot be undone.
 */
export const DEFAULT_REDACTED_CONTEXT_KEYS: readonly string[] = Object.freeze([
  'password',
  'passwd',
  'secret',
  'token',
  'authorization',
  'cookie',
  'apikey',
  'privatekey',
  'creditcard',
  'cardnumber',
  'cvv',
  'ssn',
]);

/** Returns a test for "is this key secret?", or undefined when nothing is to be masked. */
export function secretKeyMatcher(words: readonly string[] | false | undefined): ((key: string) => boolean) | undefined {
  const list = (words === undefined ? DEFAULT_REDACTED_CONTEXT_KEYS : words || []).map(normalizeKey).filter(Boolean);
  if (list.length === 0) return undefined;
  const cache = new Map<string, boolean>();
  return (key) => {
    let secret = cache.get(key);
    if (secret === undefined) {
      const k = normalizeKey(key);
      secret = list.some((word) => k.includes(word));
      if (cache.size < 10_000) cache.set(key, secret);
    }
    return secret;
  };
}

function normalizeKey(key: string): string {
  return key.toLowerCase().replace(/[-_.\s]/g, '');
}
