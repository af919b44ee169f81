import { BemiRetentionOptionsError } from '../../lib/options/duration';
import { DEFAULT_PRUNE_BATCH_SIZE, DEFAULT_RETENTION_INTERVAL_MS } from '../../lib/options/defaults';
import { resolveRetentionOptions } from '../../lib/options/retention-options';

describe('resolveRetentionOptions', () => {
  it('fills defaults and converts durations to milliseconds', () => {
    expect(resolveRetentionOptions({ maxAge: '365d' })).toEqual({
      maxAgeMs: 365 * 86_400_000,
      perTableMs: {},
      intervalMs: DEFAULT_RETENTION_INTERVAL_MS,
      batchSize: DEFAULT_PRUNE_BATCH_SIZE,
    });
  });

  it('takes perTable durations and null (keep forever), interval and batchSize', () => {
    expect(resolveRetentionOptions({ perTable: { orders: '7d', invoices: null }, interval: '30m', batchSize: 100 })).toEqual({
      maxAgeMs: null,
      perTableMs: { orders: 7 * 86_400_000, invoices: null },
      intervalMs: 30 * 60_000,
      batchSize: 100,
    });
  });

  it.each([
    [null, /Retention option "retention" must be an object/],
    [[], /must be an object/],
    [{ maxAge: '1d', keep: 3 }, /Retention option "keep" is not a known option\. Known options: maxAge, perTable, interval, batchSize\./],
    [{}, /Retention option "maxAge" is missing and no perTable entry has a duration, so nothing would ever be pruned\. Set maxAge/],
    [{ perTable: { a: null } }, /nothing would ever be pruned/],
    [{ maxAge: '1year' }, /Retention option "maxAge" is not a duration: "1year"/],
    [{ maxAge: '1d', perTable: { orders: '1 month' } }, /Retention option "perTable\.orders" is not a duration/],
    [{ maxAge: '1d', perTable: ['orders'] }, /Retention option "perTable" must be an object of table name to duration/],
    [{ maxAge: '1d', perTable: { ['x'.repeat(64)]: '1d' } }, /has a key that is not a table name/],
    [{ maxAge: '1d', interval: 'hourly' }, /Retention option "interval" is not a duration/],
    [{ maxAge: '1d', batchSize: 0 }, /Retention option "batchSize" must be a whole number from 1 to 100000, got 0\. Remove it to use the default \(5000\)\./],
    [{ maxAge: '1d', batchSize: 1e6 }, /must be a whole number from 1 to 100000/],
    [{ maxAge: '1d', batchSize: '10' }, /must be a whole number from 1 to 100000, got "10"/],
  ])('rejects %j with a message naming the option and the fix', (input, message) => {
    expect(() => resolveRetentionOptions(input as never)).toThrow(BemiRetentionOptionsError);
    expect(() => resolveRetentionOptions(input as never)).toThrow(message);
  });
});
