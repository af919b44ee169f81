import type { EntityMetadata, MikroORM } from '@mikro-orm/core';

/** The slice of MikroORM's MetadataStorage used here; its shape differs between majors. */
interface Storage extends Iterable<EntityMetadata<any>> {
  find(entity: unknown): EntityMetadata<any> | undefined;
  /** MikroORM 7: entries are keyed by class, names are looked up here. */
  getByClassName?(className: string, validate: false): EntityMetadata<any> | undefined;
}

/**
 * Every discovered entity's metadata. `getAll()` is a dictionary on MikroORM 6 and a Map on 7;
 * the storage itself iterates its metadata on both.
 */
export function allEntityMetadata(orm: Pick<MikroORM, 'getMetadata'>): EntityMetadata<any>[] {
  return [...(orm.getMetadata() as unknown as Storage)];
}

/** Metadata by entity class name: keyed by name on MikroORM 6, found through `getByClassName` on 7. */
export function entityMetadataByName(orm: Pick<MikroORM, 'getMetadata'>, className: string): EntityMetadata<any> | undefined {
  const storage = orm.getMetadata() as unknown as Storage;
  return typeof storage.getByClassName === 'function' ? storage.getByClassName(className, false) : storage.find(className);
}
