import { BEMI_MESSAGE_PREFIX } from '../shared/wire-format';
import { BEMI_SQL_OBJECTS, bemiMigrationSql, DEFAULT_REPLICA_IDENTITY_FULL } from './bemi-migration-sql';
import { DEFAULT_SCHEMA } from '../shared/postgres-names';

/**
 * Renders the MikroORM migration file that installs nestjs-bemi's context triggers. Used by the
 * `migration` and `nest-add` schematics and by `npx nestjs-bemi migration:create`, so every
 * generator writes the same file for the same options. The SQL comes from `bemiMigrationSql()`
 * and is frozen into the file, like any migration.
 */
export interface BemiMigrationFileOptions {
  /** Schemas whose tables are tracked. Default `['public']`. */
  schemas?: string[];
  /** Set `REPLICA IDENTITY FULL` on tracked tables. Default true (`DEFAULT_REPLICA_IDENTITY_FULL`). */
  replicaIdentityFull?: boolean;
  /** Suffix of the file and class name: `Migration<timestamp>_<name>`. Default `bemi`. */
  name?: string;
  /** Generation time; its UTC value gives the timestamp. Default now. */
  date?: Date;
  /** The command that generated the file, quoted in the header (e.g. `nest g -c nestjs-bemi migration`). */
  generatedBy?: string;
}

export interface BemiMigrationFile {
  /** `Migration<yyyyMMddHHmmss>_<name>.ts` */
  fileName: string;
  /** The class name, which is also the file name without extension (MikroORM's convention). */
  className: string;
  /** The TypeScript source of the migration. */
  content: string;
  /** The SQL that `up()` and `down()` run (the same strings as embedded in `content`). */
  up: string;
  down: string;
}

export const DEFAULT_MIGRATION_NAME = 'bemi';

/** `yyyyMMddHHmmss` in UTC, the timestamp format of MikroORM's own migration file names. */
export function migrationTimestamp(date: Date = new Date()): string {
  if (!(date instanceof Date) || Number.isNaN(date.getTime())) throw new TypeError('migrationTimestamp: invalid date.');
  return date.toISOString().slice(0, 19).replace(/[-T:]/g, '');
}

/**
 * Parses a schema list given on a command line: `"public, audit"` → `['public', 'audit']`.
 * An array is accepted too (each element may itself be a comma-separated list).
 */
export function parseSchemaList(value: string | readonly string[] | undefined): string[] {
  if (value === undefined) return [DEFAULT_SCHEMA];
  const parts = (typeof value === 'string' ? [value] : [...value]).flatMap((v) => String(v).split(','));
  const schemas = parts.map((s) => s.trim()).filter((s) => s.length > 0);
  if (schemas.length === 0) throw new TypeError('schemas: give at least one schema name, e.g. "public" or "public,audit".');
  return [...new Set(schemas)];
}

/** Turns a migration name into the part of a class name after `Migration<timestamp>_`. */
export function normalizeMigrationName(name: string | undefined): string {
  const raw = (name ?? DEFAULT_MIGRATION_NAME).trim();
  const normalized = raw.replace(/[^A-Za-z0-9_$]+/g, '_').replace(/^_+|_+$/g, '');
  if (normalized.length === 0) throw new TypeError(`name: ${JSON.stringify(name)} has no letter or digit to build a class name from.`);
  return normalized;
}

/**
 * The trigger migrations among `fileNames` (names in one directory) that a new migration named
 * `name` would duplicate: those with the same suffix, `Migration<14 digits>_<name>.ts`; for the
 * default name, any `Migration…_bemi.ts` (also one renamed or made by MikroORM's own
 * `migration:create --name bemi`). A migration under another name is a deliberate second one
 * (e.g. for more schemas), so it does not count. Sorted, oldest first.
 */
export function existingBemiMigrations(fileNames: Iterable<string>, name?: string): string[] {
  const suffix = normalizeMigrationName(name);
  const pattern =
    suffix === DEFAULT_MIGRATION_NAME ? /^Migration.*_bemi\.ts$/ : new RegExp(`^Migration\\d{14}_${suffix.replace(/\$/g, '\\$')}\\.ts$`);
  return [...fileNames].filter((f) => pattern.test(f)).sort();
}

export function renderBemiMigrationFile(options: BemiMigrationFileOptions = {}): BemiMigrationFile {
  const schemas = options.schemas ?? [DEFAULT_SCHEMA];
  const replicaIdentityFull = options.replicaIdentityFull ?? DEFAULT_REPLICA_IDENTITY_FULL;
  const date = options.date ?? new Date();
  const className = `Migration${migrationTimestamp(date)}_${normalizeMigrationName(options.name)}`;
  const { up, down } = bemiMigrationSql({ schemas, replicaIdentityFull });
  const o = BEMI_SQL_OBJECTS;
  const schemaList = schemas.map(commentSafe).join(', ');

  const header = [
    `nestjs-bemi: context triggers for the audit trail.`,
    `Generated ${date.toISOString().replace(/\.\d{3}Z$/, 'Z')}${options.generatedBy ? ` by \`${oneLine(options.generatedBy)}\`` : ''}.`,
    `Schemas: ${schemaList}. REPLICA IDENTITY FULL: ${replicaIdentityFull ? 'yes' : 'no'}.`,
    ``,
    `up() installs, on every table of those schemas (except "changes", "mikro_orm_migrations"`,
    `and _bemi* tables), a statement-level trigger "${o.trigger}" that copies the request context`,
    `nestjs-bemi puts in a leading SQL comment into the write-ahead log, as a transactional`,
    `logical message with prefix "${BEMI_MESSAGE_PREFIX}" that also names the statement's database roles. An event`,
    `trigger "${o.eventTrigger}" does the same for tables created later (it needs a superuser; without`,
    `one, up() explains the manual step). It takes pg_logical_emit_message away from PUBLIC, so that`,
    `only the trigger emits context (that needs a superuser too; without one, up() warns what to run).`,
    replicaIdentityFull
      ? `It also sets REPLICA IDENTITY FULL on those tables, so that updates and deletes carry the whole old row.`
      : `It leaves REPLICA IDENTITY as it is (updates and deletes carry only the old primary key).`,
    `Needs PostgreSQL 14+ and wal_level=logical. Running up() again is harmless.`,
    ``,
    `down() removes the triggers, the event trigger and the _bemi_* functions, gives PUBLIC back`,
    `pg_logical_emit_message${replicaIdentityFull ? ', and resets REPLICA IDENTITY to DEFAULT on the tables that had' : '.'}`,
    ...(replicaIdentityFull ? [`the trigger.`] : []),
    `Undo: npx mikro-orm migration:down (reverts the latest migration; --to <name> for older ones).`,
    ``,
    `The SQL is frozen at generation time like any migration: upgrading nestjs-bemi does not change`,
    `it. To track other schemas later, generate a new migration rather than editing this one.`,
  ];

  const content = `${header.map((line) => (line ? `// ${line}` : '//')).join('\n')}

import { Migration } from '@mikro-orm/migrations';

const BEMI_UP = ${templateLiteral(up)};

const BEMI_DOWN = ${templateLiteral(down)};

export class ${className} extends Migration {
  override async up(): Promise<void> {
    this.addSql(BEMI_UP);
  }

  override async down(): Promise<void> {
    this.addSql(BEMI_DOWN);
  }
}
`;
  return { fileName: `${className}.ts`, className, content, up, down };
}

/**
 * A template literal whose value is exactly `text`, so the SQL stays readable line by line.
 * Escapes what a template literal would interpret: backslashes, backticks, `${`, and carriage
 * returns (which a template literal would turn into line feeds).
 */
function templateLiteral(text: string): string {
  return '`' + text.replace(/\\/g, '\\\\').replace(/`/g, '\\`').replace(/\$\{/g, '\\${').replace(/\r/g, '\\r') + '`';
}

/** A quoted name that cannot end a `//` comment (JSON escapes \n and \r, not U+2028/U+2029). */
function commentSafe(name: string): string {
  return JSON.stringify(name).replace(/\u2028/g, '\\u2028').replace(/\u2029/g, '\\u2029');
}

function oneLine(text: string): string {
  return text.replace(/[\r\n\u2028\u2029]+/g, ' ');
}
