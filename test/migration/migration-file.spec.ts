import { bemiMigrationSql } from '../../lib/migration/bemi-migration-sql';
import {
  migrationTimestamp,
  normalizeMigrationName,
  parseSchemaList,
  renderBemiMigrationFile,
} from '../../lib/migration/migration-file';
import { loadMigration, typeErrors } from '../schematics/support';

describe('renderBemiMigrationFile', () => {
  const date = new Date('2026-03-04T05:06:07.890Z');

  it('names file and class Migration<yyyyMMddHHmmss UTC>_bemi, as MikroORM names its own', () => {
    const file = renderBemiMigrationFile({ date });
    expect(file.fileName).toBe('Migration20260304050607_bemi.ts');
    expect(file.className).toBe('Migration20260304050607_bemi');
    expect(file.content).toContain('export class Migration20260304050607_bemi extends Migration {');
  });

  it('embeds exactly the SQL of bemiMigrationSql(), with REPLICA IDENTITY FULL by default', async () => {
    const file = renderBemiMigrationFile({ date });
    const expected = bemiMigrationSql({ schemas: ['public'], replicaIdentityFull: true });
    expect(file.up).toBe(expected.up);
    const loaded = await loadMigration(file.content);
    expect(loaded).toEqual({ className: file.className, up: [expected.up], down: [expected.down] });
    expect(expected.up).toContain('REPLICA IDENTITY FULL');
  });

  it('passes schemas and replicaIdentityFull: false through', async () => {
    const file = renderBemiMigrationFile({ date, schemas: ['public', 'audit'], replicaIdentityFull: false });
    const expected = bemiMigrationSql({ schemas: ['public', 'audit'], replicaIdentityFull: false });
    expect(await loadMigration(file.content)).toMatchObject({ up: [expected.up], down: [expected.down] });
    expect(expected.up).not.toContain('REPLICA IDENTITY FULL');
    expect(file.content).toContain('// Schemas: "public", "audit". REPLICA IDENTITY FULL: no.');
  });

  it('keeps the SQL readable: each line of SQL is a line of the file (only backslashes are doubled)', () => {
    const file = renderBemiMigrationFile({ date });
    const lines = file.content.split('\n');
    for (const line of [...file.up.split('\n'), ...file.down.split('\n')]) {
      expect(lines.some((l) => l.endsWith(line.replace(/\\/g, '\\\\')))).toBe(true);
    }
  });

  it('says in its header what it does and how to undo it', () => {
    const header = renderBemiMigrationFile({ date, generatedBy: 'npx nestjs-bemi migration:create' }).content.split('\nimport ')[0];
    expect(header).toMatch(/^\/\/ nestjs-bemi: context triggers/);
    expect(header).toContain('Generated 2026-03-04T05:06:07Z by `npx nestjs-bemi migration:create`.');
    expect(header).toContain('Undo: npx mikro-orm migration:down');
    expect(header).toContain('_bemi_context');
    expect(header.split('\n').every((line) => line.startsWith('//') || line === '')).toBe(true);
  });

  it('escapes what a template literal or a line comment would interpret, so odd schema names round-trip', async () => {
    const schemas = ['we`ird ${x} \\n', 'cr\rlf\r\nls\u2028ps\u2029.'];
    const file = renderBemiMigrationFile({ date, schemas, generatedBy: 'line one\nline two' });
    const expected = bemiMigrationSql({ schemas, replicaIdentityFull: true });
    expect(await loadMigration(file.content)).toMatchObject({ up: [expected.up], down: [expected.down] });
    const header = file.content.split('\nimport ')[0];
    expect(header.split(/\r\n|\r|\n|\u2028|\u2029/).every((line) => line.startsWith('//') || line === '')).toBe(true);
  });

  it('type-checks under strict settings against the real @mikro-orm/migrations types', () => {
    const file = renderBemiMigrationFile({ date, schemas: ['public', 'audit'] });
    expect(typeErrors(file.fileName, file.content)).toEqual([]);
    // the check is real: without `override`, noImplicitOverride rejects the file
    expect(typeErrors(file.fileName, file.content.replace(/override /g, '')).join('\n')).toMatch(/override/);
  });

  it('uses the name option as the suffix, made a valid class name', () => {
    expect(renderBemiMigrationFile({ date, name: 'add-bemi triggers' }).className).toBe('Migration20260304050607_add_bemi_triggers');
    expect(() => renderBemiMigrationFile({ date, name: '--' })).toThrow(/class name/);
  });

  it('rejects invalid schema names with the reason from bemiMigrationSql', () => {
    expect(() => renderBemiMigrationFile({ schemas: ['x'.repeat(64)] })).toThrow(/1-63 characters/);
  });
});

describe('helpers', () => {
  it('migrationTimestamp is UTC yyyyMMddHHmmss', () => {
    expect(migrationTimestamp(new Date('1999-12-31T23:59:59.999Z'))).toBe('19991231235959');
    expect(() => migrationTimestamp(new Date('nope'))).toThrow(TypeError);
  });

  it('parseSchemaList splits, trims and dedupes; empty is an error', () => {
    expect(parseSchemaList(undefined)).toEqual(['public']);
    expect(parseSchemaList(' public , audit,public ')).toEqual(['public', 'audit']);
    expect(parseSchemaList(['a,b', 'c'])).toEqual(['a', 'b', 'c']);
    expect(() => parseSchemaList(' , ')).toThrow(/at least one schema/);
  });

  it('normalizeMigrationName defaults to bemi', () => {
    expect(normalizeMigrationName(undefined)).toBe('bemi');
    expect(normalizeMigrationName('Audit.Triggers')).toBe('Audit_Triggers');
  });
});
