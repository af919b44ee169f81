import { Migration } from '@mikro-orm/migrations';

export class Migration20261125000000_todo extends Migration {
  override async up(): Promise<void> {
    this.addSql(`create table "todo" ("id" serial primary key, "task" text not null, "is_completed" boolean not null default false);`);
  }

  override async down(): Promise<void> {
    this.addSql(`drop table if exists "todo";`);
  }
}
