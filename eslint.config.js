// ESLint flat config: typescript-eslint's recommended set, type-aware, over src/,
// test/, bench/, migrations/, seeds/ and bin/. `npm run lint` runs it with
// --max-warnings 0, so every rule here is either an error or off.
import js from '@eslint/js';
import tseslint from 'typescript-eslint';
import globals from 'globals';

export default tseslint.config(
  {
    ignores: ['node_modules/**', 'coverage/**', 'dist/**', 'test/fixtures/**'],
  },
  js.configs.recommended,
  ...tseslint.configs.recommended,
  {
    files: ['**/*.ts'],
    languageOptions: {
      parserOptions: {
        // type-aware linting through the TypeScript project service (tsconfig.json)
        projectService: true,
        tsconfigRootDir: import.meta.dirname,
      },
      globals: { ...globals.node },
    },
    linterOptions: {
      // an eslint-disable comment that suppresses nothing is an error, not noise
      reportUnusedDisableDirectives: 'error',
    },
    rules: {
      // Raw SQL rows, Telegraf updates and JSON bodies are untyped at the edge; `any`
      // there is deliberate and the casts live where rows become domain objects.
      '@typescript-eslint/no-explicit-any': 'off',
      // Unhandled promises are real bugs in a server with workers (type-aware, cheap).
      '@typescript-eslint/no-floating-promises': 'error',
      '@typescript-eslint/no-misused-promises': ['error', { checksVoidReturn: false }],
      // Leading underscore marks an argument kept for its position (Koa middleware, callbacks).
      '@typescript-eslint/no-unused-vars': [
        'error',
        { argsIgnorePattern: '^_', varsIgnorePattern: '^_', caughtErrors: 'none', ignoreRestSiblings: true },
      ],
      // A `let` read by a closure before its one assignment (a shutdown handler, a timer)
      // must stay `let`: as `const` the early read would hit the temporal dead zone.
      'prefer-const': ['error', { ignoreReadBeforeAssign: true }],
    },
  },
  {
    files: ['**/*.js', '**/*.cjs', '**/*.mjs'],
    languageOptions: { globals: { ...globals.node } },
    linterOptions: { reportUnusedDisableDirectives: 'error' },
  },
  {
    // The dashboard's page script runs in the browser, after Chart.js's UMD build.
    files: ['src/dashboard/assets/**/*.js'],
    languageOptions: { sourceType: 'script', globals: { ...globals.browser, Chart: 'readonly' } },
  },
  {
    files: ['**/*.cjs'],
    languageOptions: { sourceType: 'commonjs' },
    // CommonJS files (mocha's reporter, the dependency-cruiser config) load with require()
    rules: { '@typescript-eslint/no-require-imports': 'off' },
  },
);
