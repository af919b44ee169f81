import 'reflect-metadata';
import { BemiIgnore } from '../../lib/rules/bemi-ignore.decorator';
import { BemiOnly } from '../../lib/rules/bemi-only.decorator';
import { BemiRedact } from '../../lib/rules/bemi-redact.decorator';
import { BemiRulesError, checkRules, compileRules, ruleFor, type RuleEntity } from '../../lib/rules/rules-compiler';

@BemiIgnore()
class AuditScratch {
  id!: number;
}

class Account {
  id!: number;
  @BemiRedact() passwordHash!: string;
  @BemiRedact('hmac') email!: string;
  @BemiIgnore() lastSeenAt!: Date;
  displayName!: string;
}

class AdminAccount extends Account {
  @BemiRedact('mask') override email = '';
}

@BemiOnly('title', 'isPublished')
class Post {
  id!: number;
  title!: string;
  isPublished!: boolean;
  body!: string;
}

const snake = (p: string) => p.replace(/[A-Z]/g, (c) => `_${c.toLowerCase()}`);
const entity = (ctor: object, table: string, schema?: string): RuleEntity => ({ ctor, table, schema, columnOf: snake });
const KEY = 'k'.repeat(16);

describe('compileRules', () => {
  it('reads the decorators of entities, with property names turned into column names', () => {
    const rules = compileRules({ hmacKey: KEY }, [entity(AuditScratch, 'audit_scratch'), entity(Account, 'account'), entity(Post, 'post', 'blog')]);
    expect(ruleFor(rules, 'public', 'audit_scratch')?.ignoreTable).toBe(true);
    expect(Object.fromEntries(ruleFor(rules, 'public', 'account')!.columns)).toEqual({ password_hash: 'mask', email: 'hmac', last_seen_at: 'ignore' });
    expect([...ruleFor(rules, 'blog', 'post')!.only!]).toEqual(['title', 'is_published']);
    expect(ruleFor(rules, 'public', 'post')).toBeUndefined();
  });

  it('lets a subclass override a parent property rule', () => {
    const rules = compileRules({}, [entity(AdminAccount, 'admin_account')]);
    expect(ruleFor(rules, 'public', 'admin_account')!.columns.get('email')).toBe('mask');
    expect(ruleFor(rules, 'public', 'admin_account')!.columns.get('password_hash')).toBe('mask');
  });

  it('applies option rules over decorators, by table or schema.table, with property or column names', () => {
    const rules = compileRules(
      {
        hmacKey: KEY,
        redactMode: 'hmac',
        tables: {
          account: { redact: { passwordHash: 'mask' }, ignore: ['display_name'] },
          'billing.invoice': { redact: ['iban'] },
          sessions: { ignore: true },
        },
      },
      [entity(Account, 'account')],
    );
    expect(Object.fromEntries(ruleFor(rules, 'public', 'account')!.columns)).toEqual({
      password_hash: 'mask',
      email: 'hmac',
      last_seen_at: 'ignore',
      display_name: 'ignore',
    });
    expect(ruleFor(rules, 'billing', 'invoice')!.columns.get('iban')).toBe('hmac');
    expect(ruleFor(rules, 'public', 'invoice')).toBeUndefined();
    expect(ruleFor(rules, 'any_schema', 'sessions')!.ignoreTable).toBe(true);
  });

  it('prefers an exact schema.table rule over a bare table rule', () => {
    const rules = compileRules({ tables: { t: { ignore: true }, 'audit.t': { ignore: ['x'] } } });
    expect(ruleFor(rules, 'public', 't')!.ignoreTable).toBe(true);
    expect(ruleFor(rules, 'audit', 't')!.ignoreTable).toBe(false);
  });

  it('refuses hmac without a key, and a column both ignored and redacted, naming the option', () => {
    expect(() => compileRules({}, [entity(Account, 'account')])).toThrow(/"rules.hmacKey" is required: column "email" of account is redacted with "hmac"/);
    expect(() => compileRules({ tables: { a: { ignore: ['x'], redact: ['x'] } } })).toThrow(/"rules.tables.a" lists column "x" both in ignore and in redact/);
  });

  it.each([
    [{ tables: { a: { ignor: true } } }, /"rules.tables.a.ignor" is not a known rule/],
    [{ tables: { a: { only: [] } } }, /"rules.tables.a.only" must be a non-empty list/],
    [{ tables: { a: { redact: { x: 'blur' } } } }, /"rules.tables.a.redact"/],
    [{ tables: { a: { ignore: 'x' } } }, /"rules.tables.a.ignore" must be true \(the whole table\) or a list/],
    [{ redactMode: 'blur' }, /"rules.redactMode" must be "mask" or "hmac"/],
    [{ skipIgnoredOnlyUpdates: 'yes' }, /"rules.skipIgnoredOnlyUpdates" must be true or false/],
    [[], /"rules" must be an object/],
  ])('rejects %j', (input, message) => {
    expect(() => checkRules(input)).toThrow(BemiRulesError);
    expect(() => checkRules(input)).toThrow(message);
  });

  it('rejects a misused decorator at declaration time', () => {
    expect(() => BemiRedact('blur' as never)).toThrow(/mode must be 'mask' or 'hmac'/);
    expect(() => BemiOnly()).toThrow(/needs at least one property name/);
  });
});
