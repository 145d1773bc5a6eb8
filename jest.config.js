/** Jest in ESM mode with ts-jest; neither transform type-checks (npm test runs tsc --noEmit first). */
export default {
  testEnvironment: 'node',
  extensionsToTreatAsEsm: ['.ts'],
  moduleNameMapper: { '^(\\.{1,2}/.*)\\.js$': '$1' },
  transform: {
    '^.+\\.ts$': ['ts-jest', { useESM: true, diagnostics: false }],
  },
  testMatch: ['<rootDir>/src/**/*.test.ts', '<rootDir>/test/**/*.test.ts'],
  testTimeout: 30000,
  // test/reporters/progress.mjs writes nothing unless DINHDANH_TEST_PROGRESS names a file (.ci/run sets it).
  reporters: ['default', '<rootDir>/test/reporters/progress.mjs'],
};
