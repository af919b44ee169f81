import { Injectable, NestMiddleware } from '@nestjs/common';
import { BemiContextStore } from './bemi-context.store';

/**
 * Opens a nestjs-cls scope for each HTTP request when the app has not mounted one
 * (ClsModule's own middleware), so that `BemiService.set()` also works in guards and pipes.
 */
@Injectable()
export class BemiScopeMiddleware implements NestMiddleware {
  constructor(private readonly store: BemiContextStore) {}

  use(_req: unknown, _res: unknown, next: (error?: unknown) => void): void {
    this.store.ensureScope(() => next());
  }
}
