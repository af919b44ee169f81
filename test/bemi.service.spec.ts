import { Logger } from '@nestjs/common';
import { BemiService } from '../lib';
import { BemiContextStore } from '../lib/context/bemi-context.store';

describe('BemiService', () => {
  const bemi = new BemiService(new BemiContextStore());

  it('run() gives work outside a request its own context, and set() merges into it', async () => {
    const seen = await bemi.run({ job: 'nightly' }, async () => {
      await new Promise((r) => setTimeout(r, 1));
      bemi.set({ batch: 3 });
      bemi.set({ batch: 4 });
      return bemi.get();
    });
    expect(seen).toEqual({ job: 'nightly', batch: 4 });
    expect(bemi.get()).toEqual({});
  });

  it('nested run() keeps the outer context and restores it afterwards', async () => {
    await bemi.run({ userId: 1, step: 'outer' }, async () => {
      const inner = await bemi.run({ step: 'inner' }, async () => bemi.get());
      expect(inner).toEqual({ userId: 1, step: 'inner' });
      expect(bemi.get()).toEqual({ userId: 1, step: 'outer' });
    });
  });

  it('concurrent runs do not see each other', async () => {
    const results = await Promise.all(
      Array.from({ length: 50 }, (_, i) =>
        bemi.run({ i }, async () => {
          await new Promise((r) => setTimeout(r, (i * 13) % 7));
          bemi.set({ after: i });
          await new Promise((r) => setTimeout(r, (i * 5) % 3));
          return bemi.get();
        }),
      ),
    );
    results.forEach((ctx, i) => expect(ctx).toEqual({ i, after: i }));
  });

  it('get() returns a copy', async () => {
    await bemi.run({ a: 1 }, async () => {
      const copy = bemi.get();
      copy.a = 2;
      expect(bemi.get()).toEqual({ a: 1 });
    });
  });

  it('set() outside any scope is ignored with a single warning instead of throwing', () => {
    const warn = jest.spyOn(Logger.prototype, 'warn').mockImplementation(() => undefined);
    try {
      const service = new BemiService(new BemiContextStore());
      service.set({ a: 1 });
      service.set({ a: 2 });
      expect(warn).toHaveBeenCalledTimes(1);
      expect(String(warn.mock.calls[0][0])).toMatch(/outside a request or bemi.run\(\) scope.*bemi.run/);
      expect(service.get()).toEqual({});
    } finally {
      warn.mockRestore();
    }
  });

  it('rejects non-objects', () => {
    expect(() => bemi.set('x' as any)).toThrow(TypeError);
    expect(() => bemi.run(null as any, () => 1)).toThrow(TypeError);
  });
});
