/** One Jest config for every package; sources are transpiled by ts-jest (types are checked by `npm run typecheck`). */
module.exports = {
  testEnvironment: 'node',
  roots: ['<rootDir>/packages', '<rootDir>/test'],
  testMatch: ['**/*.test.ts'],
  transform: { '^.+\\.ts$': ['ts-jest', { tsconfig: '<rootDir>/tsconfig.check.json' }] },
  moduleNameMapper: {
    '^@magrathea/common/(states|rules)$': '<rootDir>/packages/common/src/$1',
    '^@magrathea/([^/]+)/testing$': '<rootDir>/packages/$1/src/testing',
    '^@magrathea/([^/]+)$': '<rootDir>/packages/$1/src',
  },
  testTimeout: 30000,
};
