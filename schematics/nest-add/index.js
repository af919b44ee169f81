'use strict';
const { addBemiModuleToSource, createBemiMigration, findRootModuleFile, loadTypeScript, nestLayout, NEXT_STEPS, reader, toBoolean } = require('../utils');

/**
 * `nest add nestjs-bemi` (the Nest CLI runs the `nest-add` schematic; `ng-add` is an alias):
 * imports BemiModule.forRoot() in the root module and creates the trigger migration. Running it
 * again changes nothing: the module already imports BemiModule, and the migration exists.
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
          : `nestjs-bemi: ${result.path} exists already: no new migration (run \`nest g -c nestjs-bemi migration\` for another one).`,
      );
    }
    for (const line of NEXT_STEPS) log.info(line);
    return tree;
  };
}

module.exports = { nestAdd };
