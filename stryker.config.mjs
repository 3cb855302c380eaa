// Mutation testing (StrykerJS) of the modules where a wrong line loses or leaks
// runs; docs/testing.md says how to run it and what the last scores were.
//
// One module at a time: MUTATION_MODULE=<name> picks its files to mutate and
// the tests that run against them (scripts/mutation.sh sets it for each in
// turn). Without it, every module's files and tests are in one run (handy with
// `--mutate <glob>` for one file). Only tests that run the code in this
// process count: tests that spawn services run dist/, which Stryker never
// mutates, so they would only add time.
const modules = {
  // The run state machine and its Redis store (the Lua scripts have their own
  // table-driven test: packages/common/test/lua-scripts.test.ts).
  'run-state': {
    mutate: ['packages/common/src/runs/run-state.ts', 'packages/common/src/runs/run.store.ts'],
    tests: ['packages/common/src/runs/run-state.test.ts', 'packages/common/test/run-store.test.ts'],
  },
  // The client-certificate guard and the run body's validation (its schema
  // lives in common: the first 99 lines of ivis.schemas.ts are the run body),
  // the archive bytes' SIMD lane's JavaScript side included (the .wat's own
  // rules were mutated by hand: docs/gateway.md, *Run body*).
  gateway: {
    mutate: [
      'packages/rps-gateway/src/http/client-cert.middleware.ts',
      'packages/rps-gateway/src/services/run-request.parser.ts',
      'packages/rps-gateway/src/services/run-body.validator.ts',
      'packages/rps-gateway/src/services/bytes-lane.ts',
      'packages/rps-gateway/src/routes/params.ts',
      'packages/common/src/wire/ivis.schemas.ts:1-99',
    ],
    tests: [
      'packages/rps-gateway/src/http/client-cert.middleware.test.ts',
      'packages/rps-gateway/src/services/run-request.parser.test.ts',
      'packages/rps-gateway/src/services/run-body.validator.test.ts',
      'packages/rps-gateway/src/services/bytes-lane.test.ts',
      'packages/rps-gateway/src/routes/params.test.ts',
      'packages/common/src/wire/ivis.schemas.test.ts',
    ],
  },
  // The access list, header hygiene and request/response framing.
  forwarder: {
    mutate: [
      'packages/peer-forwarder/src/services/access-list.service.ts',
      'packages/peer-forwarder/src/services/cidr.matcher.ts',
      'packages/peer-forwarder/src/services/proxy-headers.service.ts',
      'packages/peer-forwarder/src/services/fast-request.parser.ts',
      'packages/peer-forwarder/src/services/http1.parser.ts',
    ],
    tests: [
      'packages/peer-forwarder/src/services/access-list.service.test.ts',
      'packages/peer-forwarder/src/services/cidr.matcher.test.ts',
      'packages/peer-forwarder/src/services/proxy-headers.service.test.ts',
      'packages/peer-forwarder/src/services/fast-request.parser.test.ts',
      'packages/peer-forwarder/src/services/http1.parser.test.ts',
    ],
  },
  // Liveness: who is declared lost, and when.
  scheduler: {
    mutate: [
      'packages/scheduler-sync/src/services/liveness.service.ts',
      'packages/scheduler-sync/src/services/redis-outages.service.ts',
      'packages/scheduler-sync/src/stores/peer.store.ts',
    ],
    tests: [
      'packages/scheduler-sync/src/services/liveness.service.test.ts',
      'packages/scheduler-sync/src/services/redis-outages.service.test.ts',
      'packages/scheduler-sync/test/peer-store.test.ts',
      'packages/scheduler-sync/test/redis-outages.test.ts',
      'packages/scheduler-sync/test/liveness.test.ts',
    ],
  },
  // The agent's stop (which run, which reason wins) and its claim of a run
  // (capacity: a run is taken by one peer at a time and started once), with
  // its wait for the gateway's acknowledgement.
  agent: {
    mutate: [
      'packages/peer-agent/src/services/active-runs.ts',
      'packages/peer-agent/src/services/run-claim.service.ts',
      'packages/peer-agent/src/stores/submit-acks.store.ts',
    ],
    tests: [
      'packages/peer-agent/src/services/active-runs.test.ts',
      'packages/peer-agent/test/run-claim.test.ts',
      'packages/peer-agent/test/submit-acks.test.ts',
    ],
  },
};

const name = process.env.MUTATION_MODULE;
if (name !== undefined && !(name in modules)) {
  throw new Error(`MUTATION_MODULE=${name}: not one of ${Object.keys(modules).join(', ')}`);
}
const picked = name === undefined ? Object.values(modules) : [modules[name]];
const label = name ?? 'all';

/** @type {import('@stryker-mutator/api/core').PartialStrykerOptions} */
export default {
  testRunner: 'jest',
  // MUTATION_CHECK=0 skips the type check of each mutant (faster; mutants
  // that would not compile then count as killed or survived by their tests).
  checkers: process.env.MUTATION_CHECK === '0' ? [] : ['typescript'],
  tsconfigFile: 'tsconfig.check.json',
  typescriptChecker: { prioritizePerformanceOverAccuracy: true },
  mutate: picked.flatMap((m) => m.mutate),
  coverageAnalysis: 'perTest',
  // A static mutant (a module-level constant) needs every test run again;
  // on a shared 2-core machine that costs more than it finds. Stryker counts
  // them as ignored; `--ignoreStatic false` measures them too.
  ignoreStatic: true,
  jest: {
    projectType: 'custom',
    enableFindRelatedTests: true,
    config: {
      testMatch: picked.flatMap((m) => m.tests).map((t) => `<rootDir>/${t}`),
      moduleNameMapper: {
        '^@rps/common$': '<rootDir>/packages/common/src/index.ts',
        '^@rps/common/testing$': '<rootDir>/packages/common/src/testing/index.ts',
      },
      // Types are the checker's job; transpiling only keeps each test run short.
      transform: {
        '^.+\\.ts$': ['ts-jest', { tsconfig: '<rootDir>/tsconfig.check.json', isolatedModules: true }],
      },
      testEnvironment: 'node',
      testTimeout: 60000,
    },
  },
  // Two cores shared with other work: never more than two test processes.
  concurrency: 2,
  // A mutant that hangs a test (an endless loop) is timed out, not waited for:
  // the bound is the dry run's own time per test, times 3, plus 10 s of slack.
  timeoutFactor: 3,
  timeoutMS: 10000,
  // The first, unmutated run of all the module's tests (with per-test
  // coverage) takes minutes on a loaded machine (scheduler-sync's liveness
  // tests and the gateway's property tests passed Stryker's default of 5).
  dryRunTimeoutMinutes: 30,
  incremental: true,
  incrementalFile: `reports/mutation/${label}.incremental.json`,
  reporters: ['clear-text', 'progress', 'html', 'json'],
  htmlReporter: { fileName: `reports/mutation/${label}.html` },
  jsonReporter: { fileName: `reports/mutation/${label}.json` },
  thresholds: { high: 90, low: 85, break: null },
  ignorePatterns: [
    'dist',
    'coverage',
    '.rps',
    'certs',
    'reports',
    'docker',
    'bench',
    'test/chaos/dist',
    '*.tsbuildinfo',
  ],
  tempDirName: '.stryker-tmp',
  cleanTempDir: true,
};
