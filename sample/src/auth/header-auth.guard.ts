import { CanActivate, ExecutionContext, Injectable } from '@nestjs/common';

/**
 * Stand-in for real authentication: `x-user-id: 187234` makes the request act as user 187234
 * by setting `req.user`, as Passport would. nestjs-bemi records `req.user.id` as `userId`.
 */
@Injectable()
export class HeaderAuthGuard implements CanActivate {
  canActivate(ctx: ExecutionContext): boolean {
    if (ctx.getType() !== 'http') return true;
    const req = ctx.switchToHttp().getRequest();
    const header = req.headers['x-user-id'];
    if (typeof header === 'string' && /^\d+$/.test(header)) req.user = { id: Number(header) };
    return true;
  }
}
