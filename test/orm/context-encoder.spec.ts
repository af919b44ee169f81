import { contextComment, encodeContext, toJsonSafe } from '../../lib/orm/context-encoder';

describe('encodeContext', () => {
  it('writes * and ? as JSON escapes, so the text cannot close or nest the comment nor hold a placeholder', () => {
    const text = encodeContext({ 'k*?': 'a*/b/*c?d Bemi*/' });
    expect(text).not.toMatch(/[*?]/);
    expect(text).toBe('{"k\\u002a\\u003f":"a\\u002a/b/\\u002ac\\u003fd Bemi\\u002a/"}');
    expect(JSON.parse(text)).toEqual({ 'k*?': 'a*/b/*c?d Bemi*/' });
  });

  it('is plain JSON otherwise (compatible with Bemi ingestion)', () => {
    expect(encodeContext({ userId: 187234, endpoint: '/todo', params: { id: '26' } })).toBe('{"userId":187234,"endpoint":"/todo","params":{"id":"26"}}');
  });

  it('keeps control characters and NUL as escapes that parse back exactly', () => {
    const value = { s: 'a\u0000b\nc\u2028😀' };
    const text = encodeContext(value);
    expect(text).not.toMatch(/[\u0000\n]/);
    expect(JSON.parse(text)).toEqual(value);
  });

  it('builds the leading comment', () => {
    expect(contextComment('{"a":1}')).toBe('/*Bemi {"a":1} Bemi*/ ');
  });
});

describe('toJsonSafe', () => {
  it('converts values JSON cannot hold, deterministically', () => {
    const cyclic: any = { a: 1 };
    cyclic.me = cyclic;
    const shared = { x: 1 };
    expect(
      toJsonSafe({
        n: 1n,
        d: new Date(0),
        u: undefined,
        f: () => 1,
        s: Symbol('x'),
        arr: [undefined, Infinity, 0, 2],
        cyclic,
        twice: [shared, shared],
        m: new Map([[1, { y: 2n }]]),
        set: new Set([1, 1, 2]),
        custom: { toJSON: () => ({ custom: true }) },
      }),
    ).toEqual({
      n: '1',
      d: '1970-01-01T00:00:00.000Z',
      arr: [null, null, 0, 2],
      cyclic: { a: 1, me: '[Circular]' },
      twice: [{ x: 1 }, { x: 1 }],
      m: { '1': { y: '2' } },
      set: [1, 2],
      custom: { custom: true },
    });
  });

  it('survives a toJSON that returns its own object', () => {
    const weird: any = { v: 1 };
    weird.toJSON = () => weird;
    expect(toJsonSafe({ weird })).toEqual({ weird: '[Circular]' });
  });
});
