import { VALUE_FORMAT_SETTINGS } from '../../lib/shared/value-formats';

describe('VALUE_FORMAT_SETTINGS', () => {
  it('pins the formats pgoutput prints values with, each fit for a libpq -c option as is', () => {
    expect(Object.fromEntries(VALUE_FORMAT_SETTINGS)).toEqual({
      datestyle: 'ISO,MDY',
      timezone: 'UTC',
      intervalstyle: 'postgres',
      bytea_output: 'hex',
      extra_float_digits: '1',
    });
    for (const [name, value] of VALUE_FORMAT_SETTINGS) expect(`${name}=${value}`).toMatch(/^\S+$/);
  });
});
