// Two tiers (STYLE.md): unit tests sit next to the code and touch no network;
// integration tests live in each package's test/ and use real Redis and sockets.
const moduleNameMapper = {
  '^@rps/common$': '<rootDir>/packages/common/src/index.ts',
  '^@rps/common/testing$': '<rootDir>/packages/common/src/testing/index.ts',
};
const transform = { '^.+\\.ts$': ['ts-jest', { tsconfig: '<rootDir>/tsconfig.check.json' }] };
// Stryker's sandboxes (npm run test:mutation) are copies of the packages: never tests or modules here.
const modulePathIgnorePatterns = ['<rootDir>/.stryker-tmp/'];

/** @type {import('jest').Config} */
module.exports = {
  // Integration tests start servers and processes; jest 29 reads this only at the top level.
  testTimeout: 60000,
  projects: [
    {
      displayName: 'unit',
      rootDir: __dirname,
      testMatch: ['<rootDir>/packages/*/src/**/*.test.ts'],
      moduleNameMapper,
      modulePathIgnorePatterns,
      transform,
      testEnvironment: 'node',
    },
    {
      displayName: 'integration',
      rootDir: __dirname,
      testMatch: ['<rootDir>/packages/*/test/**/*.test.ts', '<rootDir>/test/**/*.test.ts'],
      moduleNameMapper,
      modulePathIgnorePatterns,
      transform,
      testEnvironment: 'node',
      globalSetup: '<rootDir>/scripts/jest-global-setup.js',
    },
  ],
};
