import { createHmac } from 'node:crypto';
import { redactionHmac } from '../../lib/rules/redaction-hmac';
import { isRedactedValue } from '../../lib/rules/rules.constants';

describe('redactionHmac', () => {
  it('is the prefixed hex HMAC-SHA256 of the UTF-8 text, which isRedactedValue recognises', () => {
    const value = redactionHmac('a-secret-of-sixteen+', 'zoë@example.com');
    expect(value).toBe(`hmac-sha256:${createHmac('sha256', 'a-secret-of-sixteen+').update(Buffer.from('zoë@example.com', 'utf8')).digest('hex')}`);
    expect(isRedactedValue(value)).toBe(true);
    expect(redactionHmac('another-key-of-16+', 'zoë@example.com')).not.toBe(value);
  });
});
