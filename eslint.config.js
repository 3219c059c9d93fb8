// Lint: type-checked rules that catch real bugs, the layer order of src/ folders (DESIGN.md's flow), no
// import cycles, and size limits that keep a file to one idea. `npm run check` runs it with prettier and tsc.
import tseslint from 'typescript-eslint';
import importX from 'eslint-plugin-import-x';
import { createTypeScriptImportResolver } from 'eslint-import-resolver-typescript';

// Each src/ folder, and the folders it must not import. The flow goes one way:
// cli → api → node → manager | agent → engine → cluster | net → util (lab is the `shoal machine` tool).
const all = ['cli', 'lab', 'api', 'node', 'manager', 'agent', 'engine', 'cluster', 'net', 'util'];
const mayImport = {
  cli: all,
  lab: ['lab', 'engine', 'cluster', 'net', 'util'],
  api: ['api', 'node', 'manager', 'agent', 'engine', 'cluster', 'net', 'util'],
  node: ['node', 'manager', 'agent', 'engine', 'cluster', 'net', 'util'],
  manager: ['manager', 'cluster', 'net', 'util'],
  agent: ['agent', 'engine', 'cluster', 'net', 'util'],
  engine: ['engine', 'cluster', 'net', 'util'],
  cluster: ['cluster', 'net', 'util'],
  net: ['net', 'util'],
  util: ['util'],
};
const zones = Object.entries(mayImport).flatMap(([target, allowed]) =>
  all
    .filter((f) => !allowed.includes(f))
    .map((from) => ({
      target: `./src/${target}`,
      from: `./src/${from}`,
      message: `src/${target} may import only ${allowed.join(', ')} (the flow in DESIGN.md)`,
    })),
);

export default tseslint.config(
  { ignores: ['dist/**', 'node_modules/**', 'src/api/decode/schema.generated.ts', 'eslint.config.js'] },
  {
    files: ['**/*.ts'],
    extends: [tseslint.configs.base],
    languageOptions: {
      parserOptions: { projectService: true, tsconfigRootDir: import.meta.dirname },
    },
    plugins: { 'import-x': importX },
    settings: {
      'import-x/resolver-next': [createTypeScriptImportResolver({ project: './tsconfig.json' })],
      // Without these import-x parses no .ts file when it follows imports, and no-cycle finds nothing.
      'import-x/extensions': ['.ts', '.js', '.mjs'],
      'import-x/parsers': { '@typescript-eslint/parser': ['.ts'] },
    },
    rules: {
      // node:test's test() and describe() return promises the runner itself awaits.
      '@typescript-eslint/no-floating-promises': [
        'error',
        {
          // A bare `void p` still lets p reject unhandled, which ends a Node 20 process (issue 15).
          ignoreVoid: false,
          allowForKnownSafeCalls: [
            {
              from: 'package',
              package: 'node:test',
              name: ['test', 'describe', 'it', 'suite', 'before', 'after', 'beforeEach', 'afterEach'],
            },
          ],
        },
      ],
      '@typescript-eslint/no-misused-promises': ['error', { checksVoidReturn: false }],
      '@typescript-eslint/await-thenable': 'error',
      '@typescript-eslint/no-explicit-any': 'error',
      'import-x/no-cycle': 'error',
      'import-x/no-restricted-paths': ['error', { zones }],
    },
  },
  {
    files: ['src/**/*.ts'],
    rules: {
      'max-lines': ['error', { max: 400, skipBlankLines: true, skipComments: true }],
      'max-lines-per-function': ['error', { max: 100, skipBlankLines: true, skipComments: true }],
    },
  },
);
