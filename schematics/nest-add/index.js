'use strict';
const {
  addBemiModuleToSource,
  callsEnableShutdownHooks,
  createBemiMigration,
  findRootModuleFile,
  loadTypeScript,
  nestLayout,
  nextSteps,
  readBemiRegistration,
  reader,
  toBoolean,
} = require('../utils');

/**
 * `nest add nestjs-bemi` (the Nest CLI runs the `nest-add` schematic; `ng-add` is an alias):
 * imports BemiModule.forRoot() in the root module and creates the trigger migration. Running it
 * again changes nothing: the module already imports BemiModule, and the migration exists.
 * The next steps it prints follow the app: capture in the app or by the bin, shutdown hooks.
 */
function nestAdd(options) {
  return (tree, context) => {
    const log = context.logger;
    const read = reader(tree);
    const layout = nestLayout(read, options);
    const ts = loadTypeScript();
    let moduleFile;
    if (!toBoolean(options.skipModule, false)) {
      if (!ts) {
        log.warn('nestjs-bemi: TypeScript is not installed here, so the root module was not edited: add BemiModule.forRoot() to its imports by hand.');
      } else {
        moduleFile = typeof options.module === 'string' && options.module !== '' ? options.module.replace(/^\.\//, '') : findRootModuleFile(ts, read, layout);
        const source = moduleFile === undefined ? undefined : read(moduleFile);
        if (source === undefined) {
          log.warn(`nestjs-bemi: root module not found${moduleFile ? ` at ${moduleFile}` : ''}: add BemiModule.forRoot() to its imports by hand (or pass --module <file>).`);
        } else {
          const edit = addBemiModuleToSource(ts, source, moduleFile);
          if (edit.changed) tree.overwrite(moduleFile, edit.content);
          (edit.changed ? log.info : log.warn).call(log, `nestjs-bemi: ${edit.message}`);
        }
      }
    }
    if (!toBoolean(options.skipMigration, false)) {
      const result = createBemiMigration(tree, options, {
        skipIfPresent: true,
        generatedBy: 'nest add nestjs-bemi',
        extraCandidates: moduleFile ? [moduleFile] : [],
      });
      log.info(
        result.created
          ? `nestjs-bemi: migration ${result.path}${result.origin ? ` (${result.origin})` : ''}.`
          : `nestjs-bemi: ${result.path} exists already: no new migration (for a second one: npx nestjs-bemi migration:create --force, or nest g -c nestjs-bemi migration <name>).`,
      );
    }
    for (const line of nextSteps(appFacts(tree, options, layout, ts, moduleFile))) log.info(line);
    return tree;
  };
}

/**
 * What the next steps depend on, read from the tree after the edit: whether the root module's
 * BemiModule.forRoot() has a capture option (undefined when unknown: no TypeScript, no module
 * found, options the syntax does not show) and whether main.ts calls enableShutdownHooks().
 */
function appFacts(tree, options, layout, ts, moduleFile) {
  if (!ts) return { capture: undefined };
  const read = reader(tree);
  const file = moduleFile ?? (typeof options.module === 'string' && options.module !== '' ? options.module.replace(/^\.\//, '') : findRootModuleFile(ts, read, layout));
  const source = file === undefined ? undefined : read(file);
  const registration = source === undefined ? undefined : readBemiRegistration(ts, source, file);
  const mainFile = `${layout.sourceRoot === '.' ? '' : `${layout.sourceRoot}/`}${layout.entryFile}.ts`;
  const main = read(mainFile);
  return {
    capture: registration && registration.registered ? registration.capture : undefined,
    shutdownHooks: main !== undefined && callsEnableShutdownHooks(ts, main, mainFile),
  };
}

module.exports = { nestAdd };
