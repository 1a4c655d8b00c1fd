/**
 * The prebuilt workflow bundle (temporal/workflow-bundle.ts): its name follows the content of
 * everything in it, so a worker finds the one built for its code and never runs a stale one; a
 * missing one is built once and cached.
 */
import { copyFileSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import { beforeAll, describe, expect, it } from 'vitest';
import { FAILURE_CONVERTER_PATH } from '../../temporal/codec.ts';
import { bundleSpec, type LocatedBundle, runtimeImports, workflowBundle } from '../../temporal/workflow-bundle.ts';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));
const temp = (prefix: string) => mkdtempSync(join(tmpdir(), `dcm-bundle-${prefix}-`));

describe('what a bundle is built from', () => {
  it('reads the imports that load code, not type-only ones', () => {
    const source = [
      "import * as wf from '@temporalio/workflow';",
      "import type { JobInput } from '../core/journal.ts';",
      "import { type CataloguedError, productError } from '../core/errors.ts';",
      'import {',
      '  a,',
      '  b,',
      "} from './multi-line.ts';",
      "export { durableScript } from './durable-script.ts';",
      "export type { X } from './types.ts';",
      "import './side-effect.ts';",
      "const later = await import('./dynamic.ts');",
    ].join('\n');
    expect(runtimeImports(source)).toEqual([
      '@temporalio/workflow',
      '../core/errors.ts',
      './multi-line.ts',
      './durable-script.ts',
      './side-effect.ts',
      './dynamic.ts',
    ]);
  });

  it('gets a new name when a source it loads changes, and keeps it when only a type-only import changes', () => {
    const dir = temp('tree');
    const write = (name: string, text: string) => writeFileSync(join(dir, name), text);
    write('index.ts', "import { a } from './a.ts';\nimport type { T } from './t.ts';\nexport const w = (): T => a;\n");
    write('a.ts', 'export const a = 1;\n');
    write('t.ts', 'export type T = number;\n');
    const entry = join(dir, 'index.ts');
    const first = bundleSpec(undefined, entry);
    expect(first.sources).toEqual([join(dir, 'a.ts'), entry]);
    write('t.ts', 'export type T = number | string;\n');
    expect(bundleSpec(undefined, entry).fileName).toBe(first.fileName);
    write('a.ts', 'export const a = 2;\n');
    expect(bundleSpec(undefined, entry).fileName).not.toBe(first.fileName);
  });

  it('names the variant, and the sealed one is built from the failure converter too', () => {
    const plain = bundleSpec(undefined);
    const sealed = bundleSpec(FAILURE_CONVERTER_PATH);
    expect(plain.fileName).toMatch(/^workflows\.plain\.[0-9a-f]{24}\.js$/);
    expect(sealed.fileName).toMatch(/^workflows\.sealed-failures\.[0-9a-f]{24}\.js$/);
    expect(sealed.sources).toEqual([...plain.sources, FAILURE_CONVERTER_PATH].sort());
    expect(plain.packages.map((p) => p.replace(/@[^@]+$/, ''))).toEqual([
      '@temporalio/common',
      '@temporalio/worker',
      '@temporalio/workflow',
    ]);
  });
});

describe('finding the bundle', () => {
  const spec = bundleSpec(undefined);
  let cacheDir: string;
  let built: LocatedBundle;

  beforeAll(async () => {
    cacheDir = temp('cache');
    // A bundle of other code, in the cache where the new one goes: never used, and replaced.
    writeFileSync(join(cacheDir, 'workflows.plain.000000000000000000000000.js'), 'stale');
    built = await workflowBundle(undefined, { prebuiltDir: temp('empty'), cacheDir });
  }, 120_000);

  it('builds a missing bundle into the cache, replacing older ones of its variant', () => {
    expect(built.builtInMs).toBeGreaterThan(0);
    expect(built.path).toBe(join(cacheDir, spec.fileName));
    expect(readdirSync(cacheDir)).toEqual([spec.fileName]);
  });

  it('holds exactly the project modules the name was computed from', () => {
    const code = readFileSync(built.path, 'utf8');
    const modules = new Set([...code.matchAll(/"\.\/((?:core|workflows|temporal)\/[\w./-]+\.ts)"/g)].map((m) => m[1]));
    expect([...modules].sort()).toEqual(spec.sources.map((s) => relative(ROOT, s)));
  });

  it('uses a bundle found in the cache or prebuilt, without building', async () => {
    const fromCache = await workflowBundle(undefined, { prebuiltDir: temp('other'), cacheDir });
    expect(fromCache).toEqual({ path: built.path });

    const prebuiltDir = temp('prebuilt');
    mkdirSync(prebuiltDir, { recursive: true });
    copyFileSync(built.path, join(prebuiltDir, spec.fileName));
    const prebuilt = await workflowBundle(undefined, { prebuiltDir, cacheDir });
    expect(prebuilt).toEqual({ path: join(prebuiltDir, spec.fileName) });
  });
});
