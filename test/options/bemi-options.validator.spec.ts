import { BemiOptionsError, validateBemiOptions } from '../../lib/options/bemi-options.validator';
import { DEFAULT_REDACTED_CONTEXT_KEYS } from '../../lib/options/defaults';

describe('validateBemiOptions', () => {
  it('fills defaults', () => {
    expect(validateBemiOptions(undefined)).toEqual({
      context: undefined,
      defaultContext: true,
      maxContextSize: 1_000_000,
      attachToOrm: true,
      redactContextKeys: DEFAULT_REDACTED_CONTEXT_KEYS,
      trail: { schema: 'public', table: 'changes', captureStateTable: '_bemi_capture_state' },
    });
  });

  it.each([
    [{ context: 'userId' }, /"context" must be a function/],
    [{ maxContextSize: -1 }, /"maxContextSize" must be a whole number/],
    [{ maxContextSize: 1.5 }, /"maxContextSize"/],
    [{ defaultContext: 'yes' }, /"defaultContext" must be true or false/],
    [{ redactContextKeys: 'password' }, /"redactContextKeys" must be a list of words or false/],
    [{ redactContextKeys: ['password', ''] }, /"redactContextKeys"/],
    [{ rules: { tables: { users: { redact: 'password' } } } }, /"rules.tables.users.redact" must be a list of column names or a map/],
    [{ rules: { tabels: {} } }, /"rules.tabels" is not a known option/],
    [{ rules: { hmacKey: 'short' } }, /"rules.hmacKey" must be a string of at least 16 characters/],
    [{ rules: {}, capture: { rules: {} } }, /"capture.rules" is set together with rules/],
    [{ attachToORM: true }, /"attachToORM" is not a known option. Known options: context, defaultContext, maxContextSize, attachToOrm/],
  ])('rejects %j naming the option and the fix', (options, message) => {
    expect(() => validateBemiOptions(options as any)).toThrow(BemiOptionsError);
    expect(() => validateBemiOptions(options as any)).toThrow(message);
  });
});

it.each([
  [{ trustedRoles: 'app' }, /Capture option "trustedRoles" must be a non-empty array of names/],
  [{ trustedRoles: [] }, /Capture option "trustedRoles" must be a non-empty array of names/],
  [{ trustedRoles: ['app', ''] }, /Capture option "trustedRoles" must be a name of 1-63 characters/],
])('rejects capture %j naming the option', (capture, message) => {
  expect(() => validateBemiOptions({ capture } as any)).toThrow(message);
});

it('keeps capture.trustedRoles (without duplicates) and leaves it unset by default', () => {
  expect(validateBemiOptions({ capture: { trustedRoles: ['app', 'jobs', 'app'] } }).capture?.trustedRoles).toEqual(['app', 'jobs']);
  expect(validateBemiOptions({ capture: {} }).capture?.trustedRoles).toBeUndefined();
});

describe('validateBemiOptions: history', () => {
  it('accepts where the trail lives and rejects unknown keys', () => {
    expect(validateBemiOptions({ history: { schema: 'audit' } }).trail).toEqual({ schema: 'audit', table: 'changes', captureStateTable: '_bemi_capture_state' });
    expect(validateBemiOptions({ capture: { schema: 'cap' } }).trail).toMatchObject({ schema: 'cap', table: 'changes' });
    expect(validateBemiOptions({ capture: { schema: 'cap' }, history: { schema: 'audit', database: 'db' } }).trail).toMatchObject({ schema: 'audit', database: 'db' });
    expect(() => validateBemiOptions({ history: { shema: 'audit' } } as any)).toThrow(/"history.shema" must be one of schema, table/);
    expect(() => validateBemiOptions({ history: 'audit' } as any)).toThrow(/"history" must be an object/);
  });
});
