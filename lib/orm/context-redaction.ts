import { DEFAULT_REDACTED_CONTEXT_KEYS } from '../options/defaults';

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
