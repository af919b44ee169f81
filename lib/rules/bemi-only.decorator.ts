import { BEMI_ONLY_METADATA } from './rules.constants';

/**
 * On an entity class: record only these properties (or column names); every other column's value
 * is left out. Primary key columns are always kept.
 */
export function BemiOnly(...properties: string[]): ClassDecorator {
  if (properties.length === 0 || properties.some((p) => typeof p !== 'string' || p.length === 0)) {
    throw new Error('@BemiOnly() needs at least one property name, e.g. @BemiOnly("title", "status").');
  }
  return (target: object) => {
    Reflect.defineMetadata(BEMI_ONLY_METADATA, [...properties], target);
  };
}
