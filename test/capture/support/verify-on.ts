import { Client } from 'pg';
import { pgVerifyDatabase } from '../../../lib/cli/commands/verify.command';
import { verifyTrail } from '../../../lib/history/trail-verify';
import type { TrailVerifyOptions, TrailVerifyResult } from '../../../lib/history/trail-verify.interfaces';
import type { TestDatabase } from '../../support/database';

/** verify on a plain connection, as the CLI runs it. */
export async function verifyOn(db: TestDatabase, options: TrailVerifyOptions = {}, table = 'changes'): Promise<TrailVerifyResult> {
  const client = new Client({ connectionString: db.url });
  await client.connect();
  try {
    return await verifyTrail(pgVerifyDatabase(client), 'public', table, options);
  } finally {
    await client.end();
  }
}
