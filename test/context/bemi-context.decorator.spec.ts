import { BemiContext } from '../../lib';
import { getBemiContextDefinitions } from '../../lib/context/bemi-context.decorator';

describe('@BemiContext', () => {
  it('stores class and method definitions in source order', () => {
    const fn = (req: any) => ({ id: req.params.id });
    @BemiContext({ a: 1 })
    class C {
      @BemiContext({ b: 1 })
      @BemiContext(fn)
      handler() {}
    }
    expect(getBemiContextDefinitions(C)).toEqual([{ a: 1 }]);
    expect(getBemiContextDefinitions(C.prototype.handler)).toEqual([{ b: 1 }, fn]);
  });

  it('rejects anything but an object or a function', () => {
    expect(() => BemiContext('x' as any)).toThrow(TypeError);
    expect(() => BemiContext([] as any)).toThrow(TypeError);
  });
});
