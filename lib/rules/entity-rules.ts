import type { MikroORM } from '@mikro-orm/core';
import { allEntityMetadata } from '../shared/mikro-orm-metadata';
import type { RuleEntity } from './rules-compiler';

/**
 * The application's entities as the rules compiler sees them: table, schema, decorators (on the
 * entity class) and property → column names from MikroORM's metadata. Embeddables and virtual
 * entities have no table of their own and are skipped.
 */
export function ruleEntitiesOf(orm: Pick<MikroORM, 'getMetadata'>): RuleEntity[] {
  const out: RuleEntity[] = [];
  for (const meta of allEntityMetadata(orm)) {
    if (meta.embeddable || meta.virtual || !meta.tableName || !meta.class) continue;
    const properties = meta.properties as Record<string, { fieldNames?: string[] }>;
    out.push({
      ctor: meta.class,
      schema: meta.schema && meta.schema !== '*' ? meta.schema : undefined,
      table: meta.tableName,
      columnOf: (property) => {
        const names = properties[property]?.fieldNames;
        return names?.length === 1 ? names[0] : undefined;
      },
    });
  }
  return out;
}
