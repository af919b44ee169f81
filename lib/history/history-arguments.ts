/**
 * Argument checks more than one part of BemiHistory makes, so that the same mistake gets the
 * same message whichever method it was passed to.
 */
import { BemiHistoryArgumentError } from './history.errors';
import { describe } from './history-time';

/** The most rows one page of changes() may ask for. */
export const MAX_LIMIT = 10_000;

export function checkLimit(value: unknown, method: string, fallback: number, max = MAX_LIMIT, argument = 'limit'): number {
  if (value === undefined) return fallback;
  if (typeof value !== 'number' || !Number.isInteger(value) || value < 1 || value > max) {
    throw new BemiHistoryArgumentError(method, argument, `must be an integer from 1 to ${max}, got ${describe(value)}.`);
  }
  return value;
}

export function isPlainObject(value: unknown): value is Record<string, any> {
  if (!value || typeof value !== 'object' || Array.isArray(value)) return false;
  const proto = Object.getPrototypeOf(value);
  return proto === Object.prototype || proto === null;
}
