'use strict';
const { createBemiMigration, NEXT_STEPS } = require('../utils');

/**
 * `migration`: writes <path>/Migration<yyyyMMddHHmmss>_bemi.ts with the trigger SQL.
 * Run it as `nest g -c nestjs-bemi migration [name] [path]`, or as `nest g migration` when the
 * app's nest-cli.json says "collection": "nestjs-bemi".
 */
function migration(options) {
  return (tree, context) => {
    const result = createBemiMigration(tree, options, { generatedBy: 'nestjs-bemi:migration schematic' });
    context.logger.info(`nestjs-bemi: migration ${result.path}${result.origin ? ` (${result.origin})` : ''}.`);
    for (const line of NEXT_STEPS) context.logger.info(line);
    return tree;
  };
}

module.exports = { migration };
