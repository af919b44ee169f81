import { BemiCaptureOptionsError, checkCaptureOptions } from '../../lib/options/capture-options';

describe('capture option "chain"', () => {
  it('is off by default and with false', () => {
    expect(checkCaptureOptions({}).chain).toBeUndefined();
    expect(checkCaptureOptions({ chain: false }).chain).toBeUndefined();
  });

  it('true: unkeyed links; { key }: HMAC links', () => {
    expect(checkCaptureOptions({ chain: true }).chain).toEqual({});
    expect(checkCaptureOptions({ chain: { key: 'k'.repeat(16) } }).chain).toEqual({ key: 'k'.repeat(16) });
  });

  it.each([
    [{ chain: 'yes' }, 'chain', /must be true, false or \{ key: string \}/],
    [{ chain: { key: 'short' } }, 'chain.key', /at least 16 characters, got a string of 5/],
    [{ chain: { key: 42 } }, 'chain.key', /got number/],
    [{ chain: { key: 'k'.repeat(16), algorithm: 'md5' } }, 'chain.algorithm', /is not a known option/],
  ])('%j is refused, naming the option and the fix', (input, option, problem) => {
    let error: unknown;
    try {
      checkCaptureOptions(input as never);
    } catch (e) {
      error = e;
    }
    expect(error).toBeInstanceOf(BemiCaptureOptionsError);
    expect((error as BemiCaptureOptionsError).option).toBe(option);
    expect((error as Error).message).toMatch(problem);
    expect((error as BemiCaptureOptionsError).fix).not.toBe('');
  });

  it('never echoes the key', () => {
    expect(() => checkCaptureOptions({ chain: { key: 'secret-ish' } })).toThrow(expect.objectContaining({ message: expect.not.stringContaining('secret-ish') }));
  });
});
