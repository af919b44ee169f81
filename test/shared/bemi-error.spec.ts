import * as api from '../../lib';
import { BemiError } from '../../lib/shared/bemi-error';
import { BemiOptionsError } from '../../lib/options/bemi-options.validator';
import { BemiChangeNotFoundError } from '../../lib/history/history.errors';

describe('BemiError', () => {
  it('ends the message with the fix and keeps both apart', () => {
    const error = new BemiError('The thing is wrong', 'Do this instead.');
    expect(error.message).toBe('The thing is wrong. Do this instead.');
    expect(error.fix).toBe('Do this instead.');
    expect(error.name).toBe('BemiError');
    expect(new BemiError('Ends with a full stop.', 'Fix.').message).toBe('Ends with a full stop. Fix.');
    expect(new BemiError('No fix').message).toBe('No fix');
  });

  it('is the base of every error class the public API exports, each named after its class', () => {
    const errorClasses = Object.entries(api).filter(([name, value]) => name.endsWith('Error') && typeof value === 'function');
    expect(errorClasses.map(([name]) => name).sort()).toEqual(
      [
        'BemiBeforeCaptureError',
        'BemiBeforeHorizonError',
        'BemiCaptureOptionsError',
        'BemiCaptureSetupError',
        'BemiChangeNotFoundError',
        'BemiError',
        'BemiHistoryArgumentError',
        'BemiHistoryError',
        'BemiHistoryUnavailableError',
        'BemiOptionsError',
        'BemiRetentionOptionsError',
        'BemiRevertConflictError',
        'BemiRevertOrderError',
        'BemiRevertUncheckableError',
        'BemiRevertUnsupportedError',
        'BemiRulesError',
        'BemiUnknownEntityError',
      ].sort(),
    );
    for (const [, cls] of errorClasses) expect(cls === BemiError || (cls as { prototype: unknown }).prototype instanceof BemiError).toBe(true);
    const options = new BemiOptionsError('maxContextSize', 'must be a number', 'Remove it.');
    expect(options).toBeInstanceOf(BemiError);
    expect([options.name, options.fix, options.option]).toEqual(['BemiOptionsError', 'Remove it.', 'maxContextSize']);
    expect(new BemiChangeNotFoundError('x').fix).toMatch(/id \(or cursor\) of a stored change/);
  });
});
