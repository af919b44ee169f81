import type { ExecutionContext } from '@nestjs/common';
import type { BemiContextValue } from '../options/bemi-options.interfaces';

// Metadata keys Nest itself writes for message handlers (@MessagePattern / @SubscribeMessage).
const RPC_PATTERN_METADATA = 'microservices:pattern';
const WS_MESSAGE_METADATA = 'message';

/** The request-like object handed to context factories, per transport. */
export function transportRequest(ctx: ExecutionContext): any {
  switch (ctx.getType<string>()) {
    case 'http':
      return ctx.switchToHttp().getRequest();
    case 'rpc':
      return ctx.switchToRpc().getData();
    case 'ws':
      return ctx.switchToWs().getClient();
    case 'graphql':
      return ctx.getArgs()[2]; // GraphQL resolver args: (root, args, context, info)
    default:
      return ctx.getArgs()[0];
  }
}

/**
 * Context collected for every handled call when `defaultContext` is on.
 * HTTP: `endpoint` (matched route pattern), `method`, `params`, `userId` (when `req.user.id`).
 * Other transports: `handler` (`Controller.method`), `transport`, and the message pattern or
 * GraphQL field when there is one.
 */
export function defaultRequestContext(ctx: ExecutionContext): BemiContextValue {
  const type = ctx.getType<string>();
  if (type === 'http') {
    const req = ctx.switchToHttp().getRequest() ?? {};
    const out: BemiContextValue = {
      endpoint: routePattern(req),
      method: req.method,
    };
    // Frozen (route params are strings) so that the ORM hook may reuse the context's encoding.
    if (req.params && typeof req.params === 'object' && Object.keys(req.params).length) out.params = Object.freeze({ ...req.params });
    const userId = req.user?.id;
    if (userId !== undefined && userId !== null) out.userId = userId;
    return out;
  }
  const out: BemiContextValue = { transport: type, handler: handlerName(ctx) };
  if (type === 'rpc') {
    const pattern = firstPattern(Reflect.getMetadata(RPC_PATTERN_METADATA, ctx.getHandler()));
    if (pattern !== undefined) out.pattern = pattern;
  } else if (type === 'ws') {
    const message = Reflect.getMetadata(WS_MESSAGE_METADATA, ctx.getHandler());
    if (message !== undefined) out.pattern = message;
  } else if (type === 'graphql') {
    const info = ctx.getArgs()[3];
    if (info?.fieldName) out.field = info.parentType?.name ? `${info.parentType.name}.${info.fieldName}` : info.fieldName;
  }
  return out;
}

function handlerName(ctx: ExecutionContext): string {
  return `${ctx.getClass()?.name ?? 'Anonymous'}.${ctx.getHandler()?.name ?? 'handler'}`;
}

function firstPattern(patterns: unknown): unknown {
  return Array.isArray(patterns) ? patterns[0] : patterns;
}

/** The route pattern (`/todo/:id`), not the concrete URL, on Express and Fastify. */
function routePattern(req: any): string | undefined {
  // Express: req.route.path is the pattern of the matched route, below req.baseUrl.
  if (req.route?.path && typeof req.route.path === 'string') return `${req.baseUrl ?? ''}${req.route.path}`;
  // Fastify 4.10+/5: routeOptions.url; older Fastify: routerPath.
  const fastifyUrl = req.routeOptions?.url ?? req.routerPath;
  if (typeof fastifyUrl === 'string') return fastifyUrl;
  const url: unknown = req.originalUrl ?? req.url;
  return typeof url === 'string' ? url.split('?')[0] : undefined;
}
