/**
 * Every suite: the library never sends a query on a `pg` client while an earlier one of the same
 * client is still running. pg 8 queues it with a DeprecationWarning (printed once per process,
 * easy to miss) and pg 9 will refuse it; here any such query from lib/ fails the suite that made it.
 */
import { Client } from 'pg';

const overlaps: string[] = [];
const inFlight = new WeakMap<object, number>();
const original = Client.prototype.query;

Client.prototype.query = function (this: Client, ...args: unknown[]) {
  const busy = inFlight.get(this) ?? 0;
  if (busy > 0) {
    const frame = (new Error().stack ?? '').split('\n').find((line) => line.includes('/lib/') && !line.includes('node_modules'));
    const text = typeof args[0] === 'string' ? args[0] : (args[0] as { text?: string } | undefined)?.text;
    if (frame) overlaps.push(`${String(text).slice(0, 80)} (${frame.trim()})`);
  }
  inFlight.set(this, busy + 1);
  const done = () => inFlight.set(this, (inFlight.get(this) ?? 1) - 1);
  const result = (original as (...a: unknown[]) => unknown).apply(this, args);
  if (result && typeof (result as Promise<unknown>).then === 'function') (result as Promise<unknown>).then(done, done);
  else done(); // callback or submittable form: counted as settled at once (the library uses promises)
  return result;
} as typeof Client.prototype.query;

afterAll(() => {
  if (overlaps.length) throw new Error(`The library sent queries on a busy pg client (pg 9 refuses this):\n${[...new Set(overlaps)].join('\n')}`);
});
