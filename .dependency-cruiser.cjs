// The layering of lib/ (docs/architecture.md draws it): each folder may import only the folders
// listed for it, all of them lower; the root files (bemi.module.ts, index.ts, ...) stand on top and
// no folder imports them. `npm run lint` fails on any other import and on any import cycle.
const MAY_IMPORT = {
  shared: [],
  rules: ['shared'],
  trail: ['shared'],
  options: ['shared', 'rules', 'trail'],
  migration: ['shared', 'trail', 'options'],
  context: ['shared', 'options'],
  orm: ['shared', 'rules', 'options', 'context'],
  capture: ['shared', 'rules', 'trail', 'options', 'migration', 'orm'],
  history: ['shared', 'rules', 'trail', 'options', 'context', 'orm'],
  retention: ['shared', 'trail', 'options', 'orm'],
  health: ['shared', 'options', 'capture'],
  cli: ['shared', 'rules', 'trail', 'options', 'migration', 'context', 'orm', 'capture', 'history', 'retention', 'health'],
  schematics: ['shared', 'trail', 'options', 'migration', 'cli'],
};

const layerRules = Object.entries(MAY_IMPORT).map(([folder, allowed]) => ({
  name: `layer-${folder}`,
  comment: `lib/${folder}/ may import only ${allowed.length ? allowed.map((f) => `lib/${f}/`).join(', ') : 'nothing else in lib/'} (see docs/architecture.md)`,
  severity: 'error',
  from: { path: `^lib/${folder}/` },
  to: { path: '^lib/', pathNot: `^lib/(${[folder, ...allowed].join('|')})/` },
}));

module.exports = {
  forbidden: [
    { name: 'no-circular', comment: 'files of lib/ must not import each other in a loop', severity: 'error', from: { path: '^lib/' }, to: { circular: true } },
    { name: 'unknown-folder', comment: 'a new folder of lib/ needs its place in MAY_IMPORT (.dependency-cruiser.cjs)', severity: 'error', from: { path: `^lib/(?!(${Object.keys(MAY_IMPORT).join('|')})/)[^/]+/` }, to: { path: '^lib/' } },
    ...layerRules,
  ],
  options: {
    doNotFollow: { path: 'node_modules' },
    tsPreCompilationDeps: true,
    tsConfig: { fileName: 'tsconfig.json' },
    includeOnly: '^lib/',
  },
};
