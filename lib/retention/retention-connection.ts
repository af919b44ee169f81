import type { ModuleRef } from '@nestjs/core';
import type { ClientConfig } from 'pg';
import type { BemiResolvedOptions } from '../options/bemi-options.interfaces';
import { findMikroOrm, ormClientConfig } from '../orm/find-mikro-orm';
import { BemiRetentionOptionsError } from '../options/duration';

/** Module options retention reads besides its own: where the trail lives. */
export type RetentionLocationOptions = Pick<BemiResolvedOptions, 'capture'>;

/**
 * Where `changes` is: capture's destination (which defaults to its source), else the database of
 * the application's MikroORM, as capture itself defaults.
 */
export async function retentionConnection(options: RetentionLocationOptions, moduleRef: ModuleRef): Promise<string | ClientConfig> {
  const explicit = options.capture?.destination ?? options.capture?.source;
  if (explicit !== undefined) return typeof explicit === 'string' ? explicit : { ...explicit };
  const orm = findMikroOrm(moduleRef);
  if (!orm) {
    throw new BemiRetentionOptionsError('retention', 'has no database to prune: the application has no MikroORM instance and capture has no source', 'Give capture.destination (or capture.source) a postgres:// URL.');
  }
  return ormClientConfig(orm);
}
