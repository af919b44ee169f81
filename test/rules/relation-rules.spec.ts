import { createHmac } from 'node:crypto';
import { RelationRules } from '../../lib/rules/relation-rules';
import { compileRules } from '../../lib/rules/rules-compiler';

const KEY = 'a-secret-of-sixteen+';
const COLUMNS = ['id', 'email', 'password_hash', 'updated_at', 'name'];

function resolve(rules: Parameters<typeof compileRules>[0], columns = COLUMNS) {
  return RelationRules.resolve(compileRules({ hmacKey: KEY, ...rules }), 'public', 'account', columns, ['id']);
}

describe('RelationRules', () => {
  it('is undefined when nothing applies, so the capture takes its plain path', () => {
    expect(resolve({})).toBeUndefined();
    expect(resolve({ tables: { other: { ignore: true } } })).toBeUndefined();
    expect(RelationRules.isIgnoredTable(compileRules({ tables: { account: { ignore: true } } }), 'public', 'account')).toBe(true);
  });

  it('keeps primary key columns even when `only`, ignore or redact name them', () => {
    const r = resolve({ tables: { account: { only: ['name'], redact: ['id'] } } })!;
    expect(r.treatment('id')).toBeUndefined();
    expect(r.treatment('name')).toBeUndefined();
    expect(r.treatment('email')).toBe('ignore');
    expect(r.treatment('password_hash')).toBe('ignore');
  });

  it('masks values; NULL stays null; a changed old value is marked as such', () => {
    const r = resolve({ tables: { account: { redact: ['password_hash'] } } })!;
    expect(r.redactedJson('mask', 'h1', 'after')).toBe('"[REDACTED]"');
    expect(r.redactedJson('mask', null, 'after')).toBe('null');
    expect(r.redactedJson('mask', 'h1', 'before', 'h1')).toBe('"[REDACTED]"');
    expect(r.redactedJson('mask', 'h1', 'before', 'h2')).toBe('"[REDACTED:old]"');
    expect(r.redactedJson('mask', 'h1', 'before', undefined)).toBe('"[REDACTED]"');
  });

  it('stores a keyed HMAC-SHA256 of the value text', () => {
    const r = resolve({ tables: { account: { redact: { email: 'hmac' } } } })!;
    const expected = createHmac('sha256', KEY).update('ann@example.com').digest('hex');
    expect(r.redactedJson('hmac', 'ann@example.com', 'after')).toBe(JSON.stringify(`hmac-sha256:${expected}`));
    expect(r.redactedJson('hmac', 'ann@example.com', 'before')).toBe(r.redactedJson('hmac', 'ann@example.com', 'after'));
    expect(r.redactedJson('hmac', 'bob@example.com', 'after')).not.toBe(r.redactedJson('hmac', 'ann@example.com', 'after'));
  });

  it('tells an update that changed only ignored columns, when asked to', () => {
    const rules = { skipIgnoredOnlyUpdates: true, tables: { account: { ignore: ['updated_at'] } } };
    const r = resolve(rules)!;
    const old = { id: '1', email: 'a', password_hash: 'h', updated_at: 't1', name: 'n' };
    expect(r.onlyIgnoredChanged(old, { ...old, updated_at: 't2' })).toBe(true);
    expect(r.onlyIgnoredChanged(old, { ...old, updated_at: 't2', name: 'm' })).toBe(false);
    expect(r.onlyIgnoredChanged(old, { ...old })).toBe(false); // SET x = x is kept
    expect(r.onlyIgnoredChanged(old, { ...old, updated_at: 't2', name: undefined })).toBe(true); // unchanged TOAST
    const keep = resolve({ tables: { account: { ignore: ['updated_at'] } } })!;
    expect(keep.onlyIgnoredChanged(old, { ...old, updated_at: 't2' })).toBe(false);
  });
});
