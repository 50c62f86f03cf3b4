// Lint: ESLint's recommended rules and typescript-eslint's type-checked recommended rules over every
// TypeScript file the compiler checks (tsconfig.json), with zero warnings allowed (`npm run lint`).
// Formatting is Prettier's (`npm run format:check`), so no stylistic rule is enabled here.
import js from '@eslint/js';
import { defineConfig } from 'eslint/config';
import tseslint from 'typescript-eslint';

export default defineConfig(
  { ignores: ['dist/', '.deploy/', '.sts/', '.azurite/', 'bench-results/', 'coverage/', 'node_modules/'] },
  js.configs.recommended,
  tseslint.configs.recommendedTypeChecked,
  {
    languageOptions: {
      parserOptions: { projectService: true, tsconfigRootDir: import.meta.dirname },
    },
    linterOptions: { reportUnusedDisableDirectives: 'error' },
    rules: {
      // An unused name is a finding, except the `_`-prefixed ones that mark a value deliberately dropped.
      '@typescript-eslint/no-unused-vars': [
        'error',
        {
          argsIgnorePattern: '^_',
          varsIgnorePattern: '^_',
          caughtErrorsIgnorePattern: '^_',
          destructuredArrayIgnorePattern: '^_',
        },
      ],
    },
  },
  {
    files: ['test/**/*.ts'],
    rules: {
      // Test doubles implement Promise-returning interfaces (secret stores, ledgers, handlers) with values at
      // hand; an `async` body is the plain way to write them. Product code keeps the rule.
      '@typescript-eslint/require-await': 'off',
      // vitest's asymmetric matchers (`expect.any(String)`, `expect.stringMatching(…)`) are typed `any` by
      // design, and every use inside an expected object is reported. Product code keeps the rule.
      '@typescript-eslint/no-unsafe-assignment': 'off',
    },
  },
  {
    // Configuration files in plain JavaScript, outside the TypeScript project.
    files: ['**/*.js', '**/*.mjs'],
    extends: [tseslint.configs.disableTypeChecked],
  },
);
