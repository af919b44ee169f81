import { BemiRetentionOptionsError, parseRetentionDuration } from '../../lib/options/duration';

describe('parseRetentionDuration', () => {
  it.each([
    ['365d', 365 * 86_400_000],
    ['12h', 12 * 3_600_000],
    ['30m', 30 * 60_000],
    ['90s', 90_000],
    ['2w', 14 * 86_400_000],
    [' 7d ', 7 * 86_400_000],
    [1500, 1500],
  ])('%j is %d ms', (value, ms) => {
    expect(parseRetentionDuration(value, 'maxAge')).toBe(ms);
  });

  it.each([
    ['1y', /Retention option "maxAge" is not a duration: "1y"\. Write a positive whole number followed by s, m, h, d or w/],
    ['0d', /is not a duration: "0d"/],
    ['-5d', /is not a duration/],
    ['1.5d', /is not a duration/],
    ['d', /is not a duration/],
    ['', /is not a duration/],
    [0, /must be a positive whole number of milliseconds, got 0/],
    [1.5, /must be a positive whole number of milliseconds/],
    [null, /must be a duration string such as "365d" or a number of milliseconds, got null/],
    [{}, /got object/],
  ])('rejects %j naming the option and the fix', (value, message) => {
    let error: unknown;
    try {
      parseRetentionDuration(value, 'maxAge');
    } catch (e) {
      error = e;
    }
    expect(error).toBeInstanceOf(BemiRetentionOptionsError);
    expect((error as Error).message).toMatch(message);
    expect((error as Error).message).toMatch(/^Retention option "maxAge" /);
  });

  it('names the option it was given, e.g. a perTable entry', () => {
    expect(() => parseRetentionDuration('soon', 'perTable.orders')).toThrow(/^Retention option "perTable\.orders" is not a duration/);
  });
});
