import { BEMI_IGNORE_TABLE_METADATA } from './rules.constants';
import { setColumnRule } from './column-rule.metadata';

/**
 * On an entity class: its table is not recorded. On a property: the column's value is left out of
 * `before`/`after` (the row change itself is still recorded).
 *
 * ```ts
 * @Entity() @BemiIgnore() class SessionCache { ... }
 * @Entity() class User { @Property() @BemiIgnore() lastSeenAt!: Date; }
 * ```
 */
export function BemiIgnore(): ClassDecorator & PropertyDecorator {
  return (target: object, property?: string | symbol) => {
    if (property === undefined) {
      Reflect.defineMetadata(BEMI_IGNORE_TABLE_METADATA, true, target);
      return;
    }
    setColumnRule(target, property, 'ignore');
  };
}
