'use strict';
// Shared by the schematics of this collection. The migration text, the migrations-path lookup and
// the root-module edit are the library's compiled code (dist/, built by `npm run build`); the
// `nestjs-bemi` bin uses the first two too, so every generator writes the same file.

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

const { existingBemiMigrations, renderBemiMigrationFile, parseSchemaList } = fromDist('migration/migration-file');
const { DEFAULT_REPLICA_IDENTITY_FULL } = fromDist('migration/bemi-migration-sql');
const { resolveMigrationsDirectory } = fromDist('migration/migrations-path');
const { findRootModuleFile, addBemiModuleToSource, readBemiRegistration, callsEnableShutdownHooks } = fromDist('schematics/root-module');
const { loadTypeScript } = fromDist('migration/typescript');

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
 * A flag given, as written, on the command line of this process. The schematics CLI does not
 * pass some flags on as options: @angular-devkit/schematics-cli 22 (what Nest CLI 12 installs)
 * parses `--no-<flag>` with node's parseArgs({ allowNegative }), which strips the `no-` and then
 * sets options it does not know itself to true (`--no-replica-identity-full` arrives as
 * `replicaIdentityFull: true`), and every version keeps `--force` for itself (overwrite files).
 * `nest g` rejects `--force` before any schematic runs.
 */
function onCommandLine(flag) {
  return process.argv.includes(`--${flag}`);
}

/**
 * The error a schematic fails with: a SchematicsException, whose message the schematics CLI
 * prints before exiting non-zero with nothing written (`nest g` runs that CLI, shows the
 * message, but exits 0). A plain Error, where @angular-devkit/schematics cannot be loaded from
 * here, prints the same way.
 */
function schematicError(message) {
  try {
    const { SchematicsException } = require('@angular-devkit/schematics');
    return new SchematicsException(message);
  } catch {
    return new Error(message);
  }
}

/**
 * Creates the migration in the tree. A directory that already holds a trigger migration of the
 * same name (for the default name, any `Migration*_bemi.ts`; see existingBemiMigrations) is left
 * as it is: with `skipIfPresent` that file is returned, else the schematic fails naming it,
 * unless `force` is on. Returns { path, created, origin }.
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
  const name = typeof options.name === 'string' && options.name !== '' ? options.name : undefined;
  const inDirectory = (file) => (directory === '.' ? file : `${directory}/${file}`);
  const force = onCommandLine('force') || toBoolean(options.force, false);
  const existing = existingBemiMigrations(tree.getDir(directory).subfiles, name);
  if (existing.length > 0 && skipIfPresent) return { path: inDirectory(existing[0]), created: false, origin };
  if (existing.length > 0 && !force) {
    throw schematicError(
      `nestjs-bemi: ${existing.map(inDirectory).join(', ')} exists already, so no second trigger migration was written. ` +
        'To write one anyway, pass --force: npx schematics nestjs-bemi:migration --force, or npx nestjs-bemi migration:create --force ' +
        '(nest g has no --force); or give it a name of its own: nest g -c nestjs-bemi migration <name>.',
    );
  }
  const file = renderBemiMigrationFile({
    schemas: parseSchemaList(options.schemas),
    replicaIdentityFull: onCommandLine('no-replica-identity-full') ? false : toBoolean(options.replicaIdentityFull, DEFAULT_REPLICA_IDENTITY_FULL),
    name,
    generatedBy,
  });
  const path = inDirectory(file.fileName);
  tree.create(path, file.content);
  return { path, created: true, origin };
}

/**
 * The next steps after the schematics ran, for what the app has: `capture` is true when the
 * root module's BemiModule.forRoot() has a `capture` option, false when it has none, undefined
 * when that cannot be told; `shutdownHooks` is true when main.ts calls enableShutdownHooks().
 */
function nextSteps({ capture, shutdownHooks = false } = {}) {
  const steps = [
    'Next steps:',
    '  1. PostgreSQL 14+ with wal_level = logical (then restart PostgreSQL).',
    '  2. npx mikro-orm migration:up   (undo: npx mikro-orm migration:down)',
  ];
  // Without shutdown hooks a signal ends the process before the worker stores and acknowledges what it received.
  const hooks = 'call app.enableShutdownHooks() in main.ts, so that the worker acknowledges what it received when the app stops';
  if (capture === true) {
    steps.push('  3. Changes are recorded in the app: BemiModule.forRoot({ capture }) runs the capture worker.');
    if (!shutdownHooks) steps.push(`  4. ${hooks[0].toUpperCase()}${hooks.slice(1)}.`);
  } else {
    steps.push('  3. Record the changes: npx nestjs-bemi capture --database-url <database url>   (see npx nestjs-bemi capture --help)');
    steps.push(`     or in the app: BemiModule.forRoot({ capture: {} })${shutdownHooks ? '' : `, and ${hooks}`}.`);
  }
  return steps;
}

/** The generic next steps (nothing known about the app). */
const NEXT_STEPS = nextSteps();

module.exports = {
  addBemiModuleToSource,
  callsEnableShutdownHooks,
  createBemiMigration,
  findRootModuleFile,
  loadTypeScript,
  nestLayout,
  NEXT_STEPS,
  nextSteps,
  readBemiRegistration,
  reader,
  toBoolean,
};
