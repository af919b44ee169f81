export * from './rules.interfaces';
export { BemiIgnore } from './bemi-ignore.decorator';
export { BemiRedact } from './bemi-redact.decorator';
export { BemiOnly } from './bemi-only.decorator';
export { BemiRulesError, compileRules, checkRules, type RuleEntity } from './rules-compiler';
export { REDACTED_VALUE, REDACTED_OLD_VALUE, HMAC_PREFIX } from './rules.constants';
