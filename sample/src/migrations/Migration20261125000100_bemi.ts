import { Migration } from '@mikro-orm/migrations';
import { bemiMigrationSql } from 'nestjs-bemi';

// Installs nestjs-bemi's statement-level context triggers on every table of "public".
const sql = bemiMigrationSql({ replicaIdentityFull: true });

export class Migration20261125000100_bemi extends Migration {
  override async up(): Promise<void> {
    this.addSql(sql.up);
  }

  override async down(): Promise<void> {
    this.addSql(sql.down);
  }
}
