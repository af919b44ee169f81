// The value formats the capture's walsender is pinned to. pgoutput prints values with these
// settings, so anything that must reproduce a captured value's text (revert's HMAC check) sets
// the same ones: this list is the one source for both.

/**
 * Session settings, as [name, value]: ISO dates in UTC, hex bytea, shortest exact floats. Values
 * hold no spaces, so they fit a libpq `-c name=value` option unescaped.
 */
export const VALUE_FORMAT_SETTINGS: ReadonlyArray<readonly [string, string]> = [
  ['datestyle', 'ISO,MDY'],
  ['timezone', 'UTC'],
  ['intervalstyle', 'postgres'],
  ['bytea_output', 'hex'],
  ['extra_float_digits', '1'],
];
