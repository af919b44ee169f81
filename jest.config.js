/** One embedded PostgreSQL (wal_level=logical) serves the whole run; see test/support/. */
module.exports = {
  testEnvironment: 'node',
  roots: ['<rootDir>/test'],
  testMatch: ['**/*.spec.ts'],
  transform: {
    // tsconfig has isolatedModules, so ts-jest only transpiles; type checking is `npm run typecheck`.
    '^.+\\.ts$': ['ts-jest', { tsconfig: 'tsconfig.json' }],
  },
  // The sample imports the package by name, as users do; in tests that is the source.
  moduleNameMapper: { '^nestjs-bemi$': '<rootDir>/lib/index.ts' },
  globalSetup: '<rootDir>/test/support/global-setup.mjs',
  setupFilesAfterEnv: ['<rootDir>/test/support/no-concurrent-queries.ts'],
  globalTeardown: '<rootDir>/test/support/global-teardown.mjs',
  testTimeout: 60_000,
  maxWorkers: 2,
  reporters: ['default', '<rootDir>/test/support/summary-reporter.js'],
};
