import { DEFAULT_REDACTED_CONTEXT_KEYS } from '../../lib/options/defaults';
import { secretKeyMatcher } from '../../lib/orm/context-redaction';
import { encodeContext } from '../../lib/orm/context-encoder';

describe('secretKeyMatcher', () => {
  const isSecret = secretKeyMatcher(undefined)!;

  it.each(['password', 'Password', 'newPassword', 'password_confirmation', 'accessToken', 'x-api-key', 'API_KEY', 'Authorization', 'clientSecret', 'set-cookie', 'creditCardNumber'])(
    'treats %s as secret by default',
    (key) => expect(isSecret(key)).toBe(true),
  );

  it.each(['userId', 'endpoint', 'method', 'params', 'email', 'task', 'id'])('keeps %s', (key) => expect(isSecret(key)).toBe(false));

  it('uses a custom list, and false or [] masks nothing', () => {
    const custom = secretKeyMatcher(['iban'])!;
    expect(custom('payoutIBAN')).toBe(true);
    expect(custom('password')).toBe(false);
    expect(secretKeyMatcher(false)).toBeUndefined();
    expect(secretKeyMatcher([])).toBeUndefined();
    expect(DEFAULT_REDACTED_CONTEXT_KEYS).toContain('token');
  });
});

describe('encodeContext with secret keys', () => {
  it('masks values under secret keys at any depth, in objects, arrays and Maps', () => {
    const isSecret = secretKeyMatcher(undefined);
    const text = encodeContext(
      {
        userId: 7,
        body: { email: 'a@b.c', password: 'hunter2', profile: { apiToken: { value: 'tok-1' } } },
        headers: [{ Authorization: 'Bearer abc' }],
        extra: new Map([['refresh_token', 'r-1']]),
      },
      isSecret,
    );
    expect(JSON.parse(text)).toEqual({
      userId: 7,
      body: { email: 'a@b.c', password: '[REDACTED]', profile: { apiToken: '[REDACTED]' } },
      headers: [{ Authorization: '[REDACTED]' }],
      extra: { refresh_token: '[REDACTED]' },
    });
    for (const secret of ['hunter2', 'tok-1', 'Bearer abc', 'r-1']) expect(text).not.toContain(secret);
  });

  it('leaves the context alone without a matcher', () => {
    expect(JSON.parse(encodeContext({ password: 'x' }))).toEqual({ password: 'x' });
  });
});
