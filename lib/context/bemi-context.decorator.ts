import { BEMI_CONTEXT_METADATA } from './context.constants';
import type { BemiContextFactory, BemiContextValue } from '../options/bemi-options.interfaces';

export type BemiContextDefinition = BemiContextValue | BemiContextFactory;

/**
 * Adds context to every request handled by a controller (class) or one handler (method):
 * a static object, or a function of the request `(req, ctx) => object`.
 * Method-level context wins over class-level; several decorators on one target merge top-down.
 */
export function BemiContext(definition: BemiContextDefinition): ClassDecorator & MethodDecorator {
  if (definition === null || (typeof definition !== 'object' && typeof definition !== 'function') || Array.isArray(definition)) {
    throw new TypeError('@BemiContext() takes an object or a function (req, ctx) => object.');
  }
  return (target: object, _key?: string | symbol, descriptor?: PropertyDescriptor) => {
    const holder = descriptor ? descriptor.value : target;
    const existing: BemiContextDefinition[] = Reflect.getOwnMetadata(BEMI_CONTEXT_METADATA, holder) ?? [];
    // Decorators run bottom-up; prepend so the list reads in source order.
    Reflect.defineMetadata(BEMI_CONTEXT_METADATA, [definition, ...existing], holder);
  };
}

export function getBemiContextDefinitions(target: object | undefined): BemiContextDefinition[] {
  return (target && Reflect.getOwnMetadata(BEMI_CONTEXT_METADATA, target)) ?? [];
}
