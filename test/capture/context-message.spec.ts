import { DEFAULT_CONTEXT_LIMITS, MAX_CONTEXT_DEPTH, normalizeContext, parseContextMessage, untrustedContextJson, withContextMarker } from '../../lib/capture/context-message';
import { ContextTrust } from '../../lib/capture/context-trust';

const nested = (depth: number) => '{"a":'.repeat(depth) + '1' + '}'.repeat(depth);

describe('normalizeContext: any bytes a _bemi message may carry', () => {
  it('keeps a JSON object as its own text: exact numbers, key order, duplicate keys for jsonb to settle', () => {
    expect(normalizeContext(Buffer.from('{"userId": 12345678901234567890, "b": [1, 2]}'))).toEqual({ json: '{"userId": 12345678901234567890, "b": [1, 2]}' });
  });

  it('replaces the escapes jsonb cannot store (U+0000, lone surrogates) with U+FFFD and keeps the context', () => {
    expect(normalizeContext(Buffer.from('{"a":"x\\u0000y","b":"\\ud800"}'))).toEqual({ json: '{"a":"x\\ufffdy","b":"\\ufffd"}' });
  });

  it.each([
    ['malformed JSON', Buffer.from('{"userId": 1'), /not JSON/, '{"userId": 1'],
    ['a JSON array', Buffer.from('[1,2]'), /not a JSON object/, '[1,2]'],
    ['a JSON string', Buffer.from('"admin"'), /not a JSON object/, '"admin"'],
    ['invalid UTF-8', Buffer.from([0x7b, 0x22, 0xff, 0xfe, 0x22, 0x3a, 0x31, 0x7d]), /not valid UTF-8/, undefined],
    ['a raw NUL byte', Buffer.from('{"a":"\u0000"}'), /not JSON/, '{"a":"\uFFFD"}'],
    ['10,000 levels deep', Buffer.from(nested(10_000)), /nests 10000 levels deep, over the limit of 4096/, undefined],
  ])('replaces %s by the documented marker, with the reason', (_what, content, reason, excerpt) => {
    const { json, problem } = normalizeContext(content);
    expect(problem).toMatch(reason);
    expect(JSON.parse(json)).toEqual({ _bemi: { invalidContext: problem, ...(excerpt !== undefined ? { excerpt } : {}) } });
  });

  it('bounds the size, and keeps a context exactly at the depth limit', () => {
    expect(normalizeContext(Buffer.alloc(DEFAULT_CONTEXT_LIMITS.maxBytes + 1, 0x20)).problem).toMatch(/over the 8388608-byte limit/);
    expect(normalizeContext(Buffer.from('{"a":1}'), { maxBytes: 3, maxDepth: 10 }).problem).toMatch(/7 bytes is over the 3-byte limit/);
    expect(normalizeContext(Buffer.from(nested(MAX_CONTEXT_DEPTH))).problem).toBeUndefined();
    expect(normalizeContext(Buffer.from(nested(MAX_CONTEXT_DEPTH + 1))).problem).toMatch(/over the limit/);
  });

  it('counts braces inside strings as text, not nesting', () => {
    expect(normalizeContext(Buffer.from(`{"s":"${'{['.repeat(5000)}\\"}"}`), { maxBytes: 1e6, maxDepth: 2 }).problem).toBeUndefined();
  });
});

describe('withContextMarker: a marker added to a stored context', () => {
  it('adds "_bemi" to an empty context and after the members of another, keeping their text', () => {
    expect(withContextMarker('{}', 'unknownKey', 'why')).toBe('{"_bemi":{"unknownKey":"why"}}');
    expect(withContextMarker('{"userId": 12345678901234567890}', 'unknownKey', 'why')).toBe('{"userId": 12345678901234567890,"_bemi":{"unknownKey":"why"}}');
  });

  it('keeps what "_bemi" held (an invalid-context marker) and wins over a duplicate key once in jsonb', () => {
    const marked = withContextMarker('{"_bemi":{"invalidContext":"not JSON"}}', 'unknownKey', 'why');
    expect(JSON.parse(marked)).toEqual({ _bemi: { invalidContext: 'not JSON', unknownKey: 'why' } });
    expect(JSON.parse(withContextMarker('{"_bemi": "forged"}', 'unknownKey', 'why'))._bemi).toEqual({ unknownKey: 'why' });
  });
});

describe('parseContextMessage: the roles header of the trigger, or the old format', () => {
  it('splits the roles from the context at the first newline (a context may hold more)', () => {
    expect(parseContextMessage(Buffer.from('["app", "login"]\n{"a":"x\\ny"}'))).toEqual({ json: '{"a":"x\\ny"}', roles: { role: 'app', sessionRole: 'login' } });
    expect(parseContextMessage(Buffer.from('["app", "app"]\n'))).toEqual({ json: '{}', roles: { role: 'app', sessionRole: 'app' } });
    // role names are JSON strings: any character, escaped
    expect(parseContextMessage(Buffer.from('["we\\"ird\\n", "x"]\n{}')).roles).toEqual({ role: 'we"ird\n', sessionRole: 'x' });
  });

  it('reads the old format (the context alone) without roles', () => {
    expect(parseContextMessage(Buffer.from('{"userId":1}'))).toEqual({ json: '{"userId":1}' });
  });

  it.each([
    ['no newline', '["app", "app"]'],
    ['not JSON', '[app]\n{}'],
    ['one role', '["app"]\n{}'],
    ['a number', '["app", 7]\n{}'],
    ['an oversized header', `[${JSON.stringify('x'.repeat(2000))}, "a"]\n{}`],
  ])('gives the invalid-context marker and no roles for a malformed header: %s', (_what, content) => {
    const parsed = parseContextMessage(Buffer.from(content));
    expect(parsed.roles).toBeUndefined();
    expect(JSON.parse(parsed.json)).toEqual({ _bemi: { invalidContext: 'context message has no valid role header' } });
  });

  it('still validates the context after a valid header', () => {
    expect(parseContextMessage(Buffer.from('["app", "app"]\n[1]'))).toMatchObject({ problem: expect.stringMatching(/not a JSON object/), roles: { role: 'app' } });
  });
});

describe('ContextTrust: whose context is believed', () => {
  const roles = (role: string, sessionRole = role) => ({ role, sessionRole });

  it('believes a trusted role, as the role acted as or as the login', () => {
    const trust = new ContextTrust(new Set(['app']), false);
    expect(trust.doubt(roles('app'))).toBeUndefined();
    expect(trust.doubt(roles('tenant_7', 'app'))).toBeUndefined();
    expect(trust.doubt(roles('app', 'mallory'))).toBeUndefined();
    expect(trust.doubt(roles('mallory'))).toBe('role "mallory" is not trusted');
    expect(trust.doubt(roles('x', 'mallory'))).toBe('roles "x" (session "mallory") are not trusted');
  });

  it('believes the old format only while an old trigger may send it, until the migration says it ran', () => {
    const trust = new ContextTrust(new Set(['app']), true);
    expect(trust.doubt(undefined)).toBeUndefined();
    trust.triggerUpgraded();
    expect(trust.doubt(undefined)).toMatch(/without roles/);
    expect(new ContextTrust(undefined, false).doubt(roles('anyone'))).toBeUndefined();
  });

  it('keeps a doubted context whole, apart from the real actor', () => {
    expect(JSON.parse(untrustedContextJson('{"userId":"admin"}', 'role "m" is not trusted'))).toEqual({ _bemi: { untrusted: 'role "m" is not trusted', context: { userId: 'admin' } } });
  });
});
