import { ClsServiceManager } from 'nestjs-cls';
import * as encoder from '../../lib/orm/context-encoder';
import { createContextAttacher } from '../../lib/orm/bemi-query-hook';
import { BemiContextStore } from '../../lib/context/bemi-context.store';
import { BemiService } from '../../lib/bemi.service';
import type { BemiContextValue } from '../../lib/options/bemi-options.interfaces';

const INSERT = 'insert into "todo" ("title") values (?)';

/** The context each statement carried, read back from the comment the hook put in front. */
function contextOf(sql: string): unknown {
  const match = /^\/\*Bemi (.*) Bemi\*\/ /.exec(sql);
  return match ? JSON.parse(match[1]) : undefined;
}

/** An attacher over a store whose current value the test sets directly (as any store may hold). */
function attacherOver() {
  let current: BemiContextValue | undefined;
  const store = { get: () => current } as unknown as BemiContextStore;
  const attach = createContextAttacher({ store, logger: { warn: () => undefined } });
  return { attach, use: (context: BemiContextValue | undefined) => (current = context) };
}

afterEach(() => jest.restoreAllMocks());

describe('the hook gives every statement the context it ran under', () => {
  it('reuses the encoding of a context nothing can change (frozen plain objects and primitives)', () => {
    const { attach, use } = attacherOver();
    const encode = jest.spyOn(encoder, 'encodeContext');
    use(Object.freeze({ userId: 1, params: Object.freeze({ id: '7' }), tags: Object.freeze(['a', 'b']) }));
    for (let i = 0; i < 3; i++) expect(contextOf(attach(INSERT))).toEqual({ userId: 1, params: { id: '7' }, tags: ['a', 'b'] });
    expect(encode).toHaveBeenCalledTimes(1);
  });

  it('sees a mutated nested object of a frozen context on the next statement', () => {
    const { attach, use } = attacherOver();
    const user = { id: 1, role: 'reader' };
    use(Object.freeze({ user }));
    expect(contextOf(attach(INSERT))).toEqual({ user: { id: 1, role: 'reader' } });
    user.role = 'admin';
    expect(contextOf(attach(INSERT))).toEqual({ user: { id: 1, role: 'admin' } });
  });

  it('sees a mutation deep inside frozen levels, and of an array', () => {
    const { attach, use } = attacherOver();
    const ids = [1];
    use(Object.freeze({ a: Object.freeze({ b: Object.freeze({ ids }) }) }));
    expect(contextOf(attach(INSERT))).toEqual({ a: { b: { ids: [1] } } });
    ids.push(2);
    expect(contextOf(attach(INSERT))).toEqual({ a: { b: { ids: [1, 2] } } });
  });

  it('sees a context object that is not frozen change (a store that does not freeze)', () => {
    const { attach, use } = attacherOver();
    const context: BemiContextValue = { step: 1 };
    use(context);
    expect(contextOf(attach(INSERT))).toEqual({ step: 1 });
    context.step = 2;
    expect(contextOf(attach(INSERT))).toEqual({ step: 2 });
  });

  it('treats values that stay mutable when frozen as changeable: Date, Map, Set, getters, toJSON, proxies', () => {
    const { attach, use } = attacherOver();
    const date = Object.freeze(new Date('2026-01-01T00:00:00Z'));
    const map = new Map([['k', 1]]);
    const set = new Set([1]);
    let counter = 0;
    const withGetter = Object.freeze({
      get n() {
        return counter;
      },
    });
    const withToJson = Object.freeze({ toJSON: () => `v${counter}` });
    const target = { n: 0 };
    const proxy = Object.freeze(new Proxy(target, {}));
    use(Object.freeze({ date, map: Object.freeze(map), set: Object.freeze(set), withGetter, withToJson, proxy }));
    expect(contextOf(attach(INSERT))).toEqual({ date: '2026-01-01T00:00:00.000Z', map: { k: 1 }, set: [1], withGetter: { n: 0 }, withToJson: 'v0', proxy: { n: 0 } });
    date.setTime(Date.parse('2027-01-01T00:00:00Z'));
    map.set('k', 2);
    set.add(2);
    counter = 1;
    expect(contextOf(attach(INSERT))).toEqual({ date: '2027-01-01T00:00:00.000Z', map: { k: 2 }, set: [1, 2], withGetter: { n: 1 }, withToJson: 'v1', proxy: { n: 0 } });
  });

  it('a frozen class instance is changeable (its prototype could gain a toJSON)', () => {
    const { attach, use } = attacherOver();
    class Actor {
      constructor(readonly id: number) {}
    }
    use(Object.freeze({ actor: Object.freeze(new Actor(1)) }));
    expect(contextOf(attach(INSERT))).toEqual({ actor: { id: 1 } });
    (Actor.prototype as unknown as { toJSON: () => string }).toJSON = () => 'actor';
    expect(contextOf(attach(INSERT))).toEqual({ actor: 'actor' });
  });

  it('a frozen cycle is reused and still encoded as "[Circular]"', () => {
    const { attach, use } = attacherOver();
    const a: Record<string, unknown> = { name: 'a' };
    const context = { a };
    a.self = a;
    Object.freeze(a);
    use(Object.freeze(context));
    expect(contextOf(attach(INSERT))).toEqual({ a: { name: 'a', self: '[Circular]' } });
    expect(contextOf(attach(INSERT))).toEqual({ a: { name: 'a', self: '[Circular]' } });
  });

  it('switches with the stored object: a replaced context is never served an older encoding', () => {
    const { attach, use } = attacherOver();
    const first = Object.freeze({ n: 1 });
    use(first);
    expect(contextOf(attach(INSERT))).toEqual({ n: 1 });
    use(Object.freeze({ n: 2 }));
    expect(contextOf(attach(INSERT))).toEqual({ n: 2 });
    use(first);
    expect(contextOf(attach(INSERT))).toEqual({ n: 1 });
    use(undefined);
    expect(attach(INSERT)).toBe(INSERT);
  });

  it('follows BemiService.set(), nested run() scopes and their end, through the real store', () => {
    const cls = ClsServiceManager.getClsService();
    const store = new BemiContextStore(cls);
    const bemi = new BemiService(store);
    const attach = createContextAttacher({ store, logger: { warn: () => undefined } });
    const seen: unknown[] = [];
    const shared = { tenant: 'a' };
    bemi.run({ job: 'sync', shared }, () => {
      seen.push(contextOf(attach(INSERT)));
      bemi.set({ step: 1 });
      seen.push(contextOf(attach(INSERT)));
      bemi.run({ step: 2 }, () => seen.push(contextOf(attach(INSERT))));
      seen.push(contextOf(attach(INSERT)));
      shared.tenant = 'b'; // the caller's object, kept by reference
      seen.push(contextOf(attach(INSERT)));
    });
    expect(seen).toEqual([
      { job: 'sync', shared: { tenant: 'a' } },
      { job: 'sync', shared: { tenant: 'a' }, step: 1 },
      { job: 'sync', shared: { tenant: 'a' }, step: 2 },
      { job: 'sync', shared: { tenant: 'a' }, step: 1 },
      { job: 'sync', shared: { tenant: 'b' }, step: 1 },
    ]);
  });

  it('leaves SELECTs alone and a too-large context off, warning once', () => {
    const warn = jest.fn();
    let current: BemiContextValue = Object.freeze({ big: 'x'.repeat(100) });
    const attach = createContextAttacher({ store: { get: () => current } as unknown as BemiContextStore, logger: { warn }, maxContextSize: 50 });
    expect(attach('select 1')).toBe('select 1');
    expect(attach(INSERT)).toBe(INSERT);
    expect(attach(INSERT)).toBe(INSERT);
    current = { big: 'x'.repeat(100) }; // changeable: encoded per statement, still one warning
    expect(attach(INSERT)).toBe(INSERT);
    expect(attach(INSERT)).toBe(INSERT);
    expect(warn).toHaveBeenCalledTimes(1);
  });
});
