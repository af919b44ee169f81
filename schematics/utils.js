'use strict';
// Shared by the schematics of this collection. The migration text, the migrations-path lookup and
// the root-module edit are the library's compiled code (dist/, built by `npm run build`), which
// the `nestjs-bemi` bin uses too, so every generator writes the same file.

function fromDist(modulePath) {
  try {
    return require(`../dist/${modulePath}`);
  } catch (error) {
    if (error && error.code === 'MODULE_NOT_FOUND' && String(error.message).includes(`dist/${modulePath}`)) {
      throw new Error(`nestjs-bemi: dist/${modulePath}.js is missing; build the package first (npm run build).`);
    }
    throw error;
  }
}

const { renderBemiMigrationFile, parseSchemaList } = fromDist('migration/migration-file');
const { resolveMigrationsDirectory } = fromDist('cli/migrations-path');
const { findRootModuleFile, addBemiModuleToSource } = fromDist('cli/root-module');
const { loadTypeScript } = fromDist('cli/typescript');

/** Reads a file of the tree as text, or undefined. */
function reader(tree) {
  return (path) => {
    const buffer = tree.read(path);
    return buffer === null ? undefined : buffer.toString('utf8');
  };
}

/** sourceRoot and entryFile: the options the Nest CLI passes win, then nest-cli.json, then defaults. */
function nestLayout(read, options) {
  let config = {};
  try {
    config = JSON.parse(read('nest-cli.json') || '{}') || {};
  } catch {
    config = {};
  }
  const given = typeof options.sourceRoot === 'string' && options.sourceRoot !== '' && options.sourceRoot !== 'undefined' ? options.sourceRoot : undefined;
  const sourceRoot = given || (typeof config.sourceRoot === 'string' && config.sourceRoot) || 'src';
  const entryFile = (typeof config.entryFile === 'string' && config.entryFile) || 'main';
  return { sourceRoot: sourceRoot.replace(/^\.\//, '').replace(/\/+$/, '') || '.', entryFile };
}

function toBoolean(value, fallback) {
  if (value === undefined || value === null || value === '') return fallback;
  if (typeof value === 'boolean') return value;
  if (value === 'true') return true;
  if (value === 'false') return false;
  throw new Error(`expected true or false, got ${JSON.stringify(value)}`);
}

/**
 * `--no-<flag>` given on the command line of this process. @angular-devkit/schematics-cli 22 (what
 * Nest CLI 12 installs) parses it with node's parseArgs({ allowNegative }), which strips the
 * `no-` and then sets the option to true for options it does not know itself: the schematic
 * receives `replicaIdentityFull: true` for `--no-replica-identity-full`. Read the flag as written.
 */
function negatedOnCommandLine(kebabName) {
  return process.argv.includes(`--no-${kebabName}`);
}

/**
 * Creates the migration in the tree. With `skipIfPresent`, a directory that already holds a
 * `Migration*_bemi.ts` is left as it is (returns that file). Returns { path, created, origin }.
 */
function createBemiMigration(tree, options, { skipIfPresent = false, generatedBy, extraCandidates = [] } = {}) {
  const read = reader(tree);
  const { sourceRoot } = nestLayout(read, options);
  let directory = typeof options.path === 'string' && options.path.trim() !== '' ? options.path.trim() : undefined;
  let origin = '';
  if (directory === undefined) {
    const found = resolveMigrationsDirectory(read, { sourceRoot, extraCandidates, ts: loadTypeScript() });
    directory = found.path;
    origin = found.foundIn ? `the migrations path of ${found.foundIn}` : 'default; no MikroORM migrations path found';
  }
  directory = directory.replace(/\\/g, '/').replace(/^\.\//, '').replace(/\/+$/, '') || '.';
  if (skipIfPresent) {
    const existing = tree.getDir(directory).subfiles.find((f) => /^Migration\d{14}_bemi\.ts$/.test(f));
    if (existing) return { path: `${directory}/${existing}`, created: false, origin };
  }
  const file = renderBemiMigrationFile({
    schemas: parseSchemaList(options.schemas),
    replicaIdentityFull: negatedOnCommandLine('replica-identity-full') ? false : toBoolean(options.replicaIdentityFull, true),
    name: typeof options.name === 'string' && options.name !== '' ? options.name : undefined,
    generatedBy,
  });
  const path = directory === '.' ? file.fileName : `${directory}/${file.fileName}`;
  tree.create(path, file.content);
  return { path, created: true, origin };
}

const NEXT_STEPS = [
  'Next steps:',
  '  1. PostgreSQL 14+ with wal_level = logical (then restart PostgreSQL).',
  '  2. npx mikro-orm migration:up   (undo: npx mikro-orm migration:down)',
  '  3. Record the changes: npx nestjs-bemi capture --source <database url>   (see npx nestjs-bemi capture --help)',
];

module.exports = {
  addBemiModuleToSource,
  createBemiMigration,
  findRootModuleFile,
  loadTypeScript,
  nestLayout,
  NEXT_STEPS,
  reader,
  toBoolean,
};
