// ESLint (flat config): typescript-eslint's recommended rules with type information, plus the
// promise rules that matter most here (a floating promise in a worker is a lost write or a hang).
import js from '@eslint/js';
import tseslint from 'typescript-eslint';
import globals from 'globals';

export default tseslint.config(
  {
    ignores: ['node_modules', '.tools', '.durable-codemode', 'test-results', 'dist', 'test/fixtures/histories'],
  },
  js.configs.recommended,
  ...tseslint.configs.recommendedTypeChecked,
  {
    languageOptions: {
      parserOptions: {
        projectService: { allowDefaultProject: ['*.js'] },
        tsconfigRootDir: import.meta.dirname,
      },
    },
    rules: {
      '@typescript-eslint/no-floating-promises': 'error',
      // Interfaces such as Temporal's PayloadCodec are async by contract, with or without an await inside.
      '@typescript-eslint/require-await': 'off',
      'prefer-const': ['error', { destructuring: 'all' }],
      '@typescript-eslint/no-unused-vars': [
        'error',
        { argsIgnorePattern: '^_', varsIgnorePattern: '^_', caughtErrors: 'none' },
      ],
    },
  },
  // The guest runtimes (sandbox/guest/) run inside the isolates, where there is no Node.
  { ignores: ['sandbox/guest/**'], languageOptions: { globals: globals.node } },
  {
    // Scripts hand the runtimes values of any type, which their messages show as String() does.
    files: ['sandbox/guest/**'],
    rules: { '@typescript-eslint/no-base-to-string': 'off' },
  },
  {
    // Tests and benchmarks read untyped JSON (API bodies, reports) on purpose and assert on it.
    files: ['test/**', 'bench/**', 'scripts/**'],
    rules: {
      '@typescript-eslint/no-unsafe-assignment': 'off',
      '@typescript-eslint/no-unsafe-member-access': 'off',
      '@typescript-eslint/no-unsafe-argument': 'off',
      '@typescript-eslint/no-unsafe-return': 'off',
      '@typescript-eslint/no-unsafe-call': 'off',
      '@typescript-eslint/no-explicit-any': 'off',
      '@typescript-eslint/unbound-method': 'off',
      '@typescript-eslint/restrict-plus-operands': 'off',
      '@typescript-eslint/restrict-template-expressions': 'off',
      '@typescript-eslint/no-misused-promises': 'off',
    },
  },
);
