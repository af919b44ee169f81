import { BEMI_COLUMN_RULES_METADATA } from './rules.constants';
import type { ColumnTreatment } from './rules.interfaces';

/** A property decorator's treatment; `default` means "redact with rules.redactMode". */
export type DecoratedTreatment = ColumnTreatment | 'default';

/** Records a property's treatment on its class, without touching a parent class's map. */
export function setColumnRule(prototype: object, property: string | symbol, treatment: DecoratedTreatment): void {
  if (typeof property !== 'string') throw new Error('nestjs-bemi rule decorators apply to string-named properties only.');
  const ctor = (prototype as { constructor: object }).constructor;
  const own: Record<string, DecoratedTreatment> = Reflect.hasOwnMetadata(BEMI_COLUMN_RULES_METADATA, ctor)
    ? Reflect.getOwnMetadata(BEMI_COLUMN_RULES_METADATA, ctor)
    : {};
  Reflect.defineMetadata(BEMI_COLUMN_RULES_METADATA, { ...own, [property]: treatment }, ctor);
}

/** Treatments of an entity class, parents first so a subclass overrides them. */
export function columnRulesOf(ctor: object): Record<string, DecoratedTreatment> {
  const chain: object[] = [];
  for (let c: object | null = ctor; c && c !== Function.prototype; c = Object.getPrototypeOf(c)) chain.unshift(c);
  return Object.assign({}, ...chain.map((c) => (Reflect.getOwnMetadata(BEMI_COLUMN_RULES_METADATA, c) as Record<string, DecoratedTreatment> | undefined) ?? {}));
}
