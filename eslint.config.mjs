// Typed lint over every package and the benchmarks. The import rules keep the layering of
// CONTRIBUTING.md: product packages meet only through @magrathea/common, no package's files are
// imported from outside it, and the pure cores import no I/O and nothing outside themselves.
import tseslint from 'typescript-eslint';
import prettier from 'eslint-config-prettier';

const ioModules = [
  'node:*',
  'fs',
  'net',
  'http',
  'child_process',
  '@grpc/*',
  'pino',
  'prom-client',
  'systeminformation',
  'node-cron',
  'yaml',
];
const PACKAGES = ['common', 'node-daemon', 'scheduler-filter', 'pbs-hooks', 'cli'];

const deepImports = { group: ['@magrathea/*/src', '@magrathea/*/src/*'], message: 'import the package, not its files' };
/** Product packages meet only through @magrathea/common (the CLI may also use @magrathea/pbs-hooks). */
const packagesBut = (...allowed) => ({
  group: PACKAGES.filter((p) => !allowed.includes(p)).flatMap((p) => [`@magrathea/${p}`, `@magrathea/${p}/*`]),
  message: 'product packages import no other product package except @magrathea/common (see CONTRIBUTING.md)',
});
const noIo = { group: ioModules, message: 'pure core: no I/O imports' };
const staysInCore = {
  group: ['../*', '../**'],
  message:
    'pure core: no relative import leaving the core folder (move what it needs into the core, or into @magrathea/common/rules)',
};
const commonRootValues = {
  name: '@magrathea/common',
  allowTypeImports: true,
  message:
    'pure core: take values from @magrathea/common/states or @magrathea/common/rules (the package root loads the gRPC contract)',
};
/** One rule entry per file group: a later config replaces the options, so each lists all its patterns. */
const restrict = (patterns, paths = []) => ({
  'no-restricted-imports': 'off',
  '@typescript-eslint/no-restricted-imports': ['error', { patterns, paths }],
});

/** The pure cores and the package each belongs to. */
const CORES = [
  ['node-daemon', ['packages/node-daemon/src/domain/**/*.ts']],
  ['scheduler-filter', ['packages/scheduler-filter/src/core/**/*.ts']],
  ['common', ['packages/common/src/rules/**/*.ts', 'packages/common/src/states.ts']],
];

const relaxedForTests = {
  '@typescript-eslint/no-explicit-any': 'off',
  '@typescript-eslint/no-unsafe-call': 'off',
  '@typescript-eslint/no-unsafe-argument': 'off',
  '@typescript-eslint/no-unsafe-return': 'off',
  '@typescript-eslint/unbound-method': 'off',
  '@typescript-eslint/no-unsafe-assignment': 'off',
  '@typescript-eslint/no-unsafe-member-access': 'off',
  '@typescript-eslint/no-non-null-assertion': 'off',
  'no-console': 'off',
};

export default tseslint.config(
  {
    ignores: [
      '**/dist/**',
      '**/node_modules/**',
      '**/generated/**',
      'coverage/**',
      '.cache/**',
      '**/*.mjs',
      '**/*.js',
      '!bench/**/*.js',
      '!packaging/**/*.js',
      '!packages/scheduler-filter/src/web/**/*.js',
    ],
  },
  ...tseslint.configs.recommendedTypeChecked,
  {
    languageOptions: { parserOptions: { projectService: true, tsconfigRootDir: import.meta.dirname } },
    rules: {
      '@typescript-eslint/no-floating-promises': 'error',
      '@typescript-eslint/no-misused-promises': 'error',
      '@typescript-eslint/switch-exhaustiveness-check': ['error', { considerDefaultExhaustiveForUnions: true }],
      '@typescript-eslint/consistent-type-imports': 'error',
      '@typescript-eslint/only-throw-error': 'error',
      '@typescript-eslint/prefer-promise-reject-errors': 'error',
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_' }],
      'no-console': 'error',
      ...restrict([deepImports]),
    },
  },
  { files: ['packages/common/**/*.ts'], rules: restrict([deepImports, packagesBut('common')]) },
  { files: ['packages/node-daemon/**/*.ts'], rules: restrict([deepImports, packagesBut('common', 'node-daemon')]) },
  {
    files: ['packages/scheduler-filter/**/*.ts'],
    rules: restrict([deepImports, packagesBut('common', 'scheduler-filter')]),
  },
  { files: ['packages/pbs-hooks/**/*.ts'], rules: restrict([deepImports, packagesBut('common', 'pbs-hooks')]) },
  // The admin front-end installs the PBS hooks; it only resolves the daemons' binaries, never imports them.
  { files: ['packages/cli/**/*.ts'], rules: restrict([deepImports, packagesBut('common', 'cli', 'pbs-hooks')]) },
  ...CORES.map(([pkg, files]) => ({
    files,
    rules: restrict([deepImports, packagesBut('common', pkg), noIo, staysInCore], [commonRootValues]),
  })),
  {
    files: ['**/test/**/*.ts', '**/*.test.ts', 'bench/**/*.ts'],
    languageOptions: {
      parserOptions: { projectService: false, project: './tsconfig.check.json', tsconfigRootDir: import.meta.dirname },
    },
    rules: relaxedForTests,
  },
  {
    // Benchmarks and the release scripts: CommonJS with JSDoc types, checked by tsconfig.bench.json.
    files: ['bench/**/*.js', 'packaging/**/*.js'],
    languageOptions: {
      sourceType: 'commonjs',
      parserOptions: { projectService: false, project: './tsconfig.bench.json', tsconfigRootDir: import.meta.dirname },
    },
    rules: { ...relaxedForTests, '@typescript-eslint/no-require-imports': 'off' },
  },
  {
    // The status page: browser ES modules with JSDoc types, checked by tsconfig.web.json.
    files: ['packages/scheduler-filter/src/web/**/*.js'],
    languageOptions: {
      sourceType: 'module',
      parserOptions: { projectService: false, project: './tsconfig.web.json', tsconfigRootDir: import.meta.dirname },
    },
  },
  { files: ['packages/cli/src/output.ts', 'packages/*/src/main.ts'], rules: { 'no-console': 'off' } },
  prettier,
);
