/**
 * The repository's own hygiene, run with the suite so CI reports it like any test: types, lint,
 * formatting, and a lock file that `npm ci` accepts. Each failure prints the tool's own output.
 */
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));

function run(bin: string, args: string[]) {
  const r = spawnSync(
    process.execPath,
    [fileURLToPath(new URL(`../../node_modules/${bin}`, import.meta.url)), ...args],
    {
      cwd: ROOT,
      encoding: 'utf8',
      timeout: 300_000,
    },
  );
  return { code: r.status, output: `${r.stdout}${r.stderr}` };
}

describe('static checks', () => {
  it('type-checks (tsc -p .)', () => {
    const { code, output } = run('typescript/bin/tsc', ['-p', '.']);
    expect(output).toBe('');
    expect(code).toBe(0);
  });

  it('lints clean (eslint .)', () => {
    const { code, output } = run('eslint/bin/eslint.js', ['.']);
    expect(output).toBe('');
    expect(code).toBe(0);
  });

  it('is formatted (prettier --check .)', () => {
    const { code, output } = run('prettier/bin/prettier.cjs', ['--check', '.', '--log-level', 'warn']);
    expect(output).toBe('');
    expect(code).toBe(0);
  });

  it('has a lock file in sync with package.json, with every platform of optional native packages', () => {
    const pkg = JSON.parse(readFileSync(`${ROOT}/package.json`, 'utf8')) as Record<string, Record<string, string>>;
    const lock = JSON.parse(readFileSync(`${ROOT}/package-lock.json`, 'utf8')) as {
      packages: Record<
        string,
        {
          dependencies?: Record<string, string>;
          devDependencies?: Record<string, string>;
          optionalDependencies?: Record<string, string>;
        }
      >;
    };
    const root = lock.packages[''];
    expect(root.dependencies).toEqual(pkg.dependencies);
    expect(root.devDependencies).toEqual(pkg.devDependencies);
    // npm ci refuses a lock file that lacks an optional dependency of a locked package.
    const missing = Object.entries(lock.packages).flatMap(([path, entry]) =>
      Object.keys(entry.optionalDependencies ?? {})
        .filter(
          (name) =>
            !lock.packages[`${path ? `${path}/` : ''}node_modules/${name}`] && !lock.packages[`node_modules/${name}`],
        )
        .map((name) => `${path || '(root)'} → ${name}`),
    );
    expect(missing).toEqual([]);
  });
});
