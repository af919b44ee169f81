import { bemiChangesTableSql, type ChangesTableSqlOptions } from '../../lib/trail/changes-table';
import type { TestDatabase } from './database';

/** The trail tables (`changes`, `_bemi_capture_state`) through the library's own DDL, exactly as the migration or the capture worker creates them. */
export async function createChangesTable(db: TestDatabase, options: ChangesTableSqlOptions = {}): Promise<void> {
  await db.query(bemiChangesTableSql(options).up);
}
