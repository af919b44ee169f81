import { Logger, type CallHandler } from '@nestjs/common';
import { ExecutionContextHost } from '@nestjs/core/helpers/execution-context-host';
import { firstValueFrom, Observable } from 'rxjs';
import { BemiContext } from '../../lib';
import { validateBemiOptions } from '../../lib/options/bemi-options.validator';
import { BemiContextInterceptor } from '../../lib/context/bemi-context.interceptor';
import { BemiContextStore } from '../../lib/context/bemi-context.store';

class OrdersController {
  @BemiContext({ via: 'decorator' })
  handleCreated() {}
}
// What Nest's @MessagePattern / @SubscribeMessage record on a handler.
Reflect.defineMetadata('microservices:pattern', [{ cmd: 'order.created' }], OrdersController.prototype.handleCreated);
Reflect.defineMetadata('message', 'order.update', OrdersController.prototype.handleCreated);

function contextOf(type: string, args: unknown[]) {
  const host = new ExecutionContextHost(args, OrdersController, OrdersController.prototype.handleCreated);
  host.setType(type);
  return host;
}

/** Runs the interceptor and returns the context the handler saw. */
function contextSeenByHandler(interceptor: BemiContextInterceptor, store: BemiContextStore, host: ExecutionContextHost) {
  const handler: CallHandler = { handle: () => new Observable((s) => { s.next(store.get()); s.complete(); }) };
  return firstValueFrom(interceptor.intercept(host, handler)) as Promise<Record<string, unknown> | undefined>;
}

describe('BemiContextInterceptor outside HTTP', () => {
  const store = new BemiContextStore();

  it.each([
    ['rpc', [{ orderId: 1 }, {}], { transport: 'rpc', handler: 'OrdersController.handleCreated', pattern: { cmd: 'order.created' } }],
    ['ws', [{ id: 'socket-1' }, { orderId: 1 }], { transport: 'ws', handler: 'OrdersController.handleCreated', pattern: 'order.update' }],
    ['graphql', [{}, {}, { req: {} }, { fieldName: 'createOrder', parentType: { name: 'Mutation' } }], { transport: 'graphql', handler: 'OrdersController.handleCreated', field: 'Mutation.createOrder' }],
  ])('records the handler for %s calls and opens its own scope', async (type, args, expected) => {
    const interceptor = new BemiContextInterceptor(validateBemiOptions({ context: (req) => ({ fromFactory: req?.orderId ?? req?.id ?? 'gql' }) }), store);
    expect(store.isActive()).toBe(false);
    const seen = await contextSeenByHandler(interceptor, store, contextOf(type, args));
    expect(seen).toMatchObject({ ...expected, via: 'decorator' });
    expect((seen as Record<string, unknown>).fromFactory).toBeDefined();
  });

  it('keeps going without the part of a context function that throws', async () => {
    const warn = jest.spyOn(Logger.prototype, 'warn').mockImplementation(() => undefined);
    try {
      const interceptor = new BemiContextInterceptor(validateBemiOptions({ context: () => { throw new Error('nope'); } }), store);
      const seen = await contextSeenByHandler(interceptor, store, contextOf('rpc', [{}, {}]));
      expect(seen).toMatchObject({ transport: 'rpc', via: 'decorator' });
      expect(String(warn.mock.calls[0][0])).toMatch(/context function threw .*nope/);
    } finally {
      warn.mockRestore();
    }
  });

  it('supports async context functions and can turn the defaults off', async () => {
    const interceptor = new BemiContextInterceptor(validateBemiOptions({ defaultContext: false, context: async () => ({ tenant: 't1' }) }), store);
    expect(await contextSeenByHandler(interceptor, store, contextOf('rpc', [{}, {}]))).toEqual({ tenant: 't1', via: 'decorator' });
  });
});
