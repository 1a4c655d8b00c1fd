/**
 * The dependency rule (README "Layout"): a folder imports only from folders on lower rows of
 * scripts/layers.ts, and from its own row types only. An upward import fails here with the file,
 * the line and the rule it breaks.
 */
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { LAYERS, STANDALONE } from '../../scripts/layers.ts';

const ROOT = resolve(fileURLToPath(new URL('../..', import.meta.url)));
const rowOf = new Map<string, number>(LAYERS.flatMap((row, i) => row.map((folder) => [folder, i] as const)));

function sourceFiles(dir: string): string[] {
  return readdirSync(dir).flatMap((name) => {
    const path = join(dir, name);
    if (statSync(path).isDirectory()) return sourceFiles(path);
    return /\.(ts|js)$/.test(name) ? [path] : [];
  });
}

interface Import {
  file: string;
  line: number;
  target: string;
  typeOnly: boolean;
}

/** Relative imports and re-exports of a file (static ones; the product uses no dynamic import of its own code). */
function importsOf(file: string): Import[] {
  const text = readFileSync(file, 'utf8');
  const found: Import[] = [];
  for (const m of text.matchAll(/^(?:import|export)\s+(type\s+)?[^'"]*?from\s+'(\.[^']+)'/gms)) {
    const line = text.slice(0, m.index).split('\n').length;
    found.push({ file, line, target: resolve(dirname(file), m[2]), typeOnly: Boolean(m[1]) });
  }
  for (const m of text.matchAll(/\bimport\(\s*'(\.[^']+)'\s*\)/g)) {
    found.push({
      file,
      line: text.slice(0, m.index).split('\n').length,
      target: resolve(dirname(file), m[1]),
      typeOnly: false,
    });
  }
  return found;
}

const folderOf = (path: string) => relative(ROOT, path).split('/')[0];

/** What is wrong with an import, or undefined when the rule allows it. */
function violation({ file, target, typeOnly }: Import): string | undefined {
  const from = folderOf(file);
  const to = folderOf(target);
  if (from === to) return undefined;
  if ((STANDALONE as readonly string[]).includes(from))
    return `${from}/ is stand-alone and imports nothing of the product`;
  const fromRow = rowOf.get(from)!;
  if ((STANDALONE as readonly string[]).includes(to))
    return fromRow === LAYERS.length - 1 ? undefined : `only the top layer starts ${to}/`;
  const toRow = rowOf.get(to);
  if (toRow === undefined) return `${to}/ is not a product layer`;
  if (toRow > fromRow) return `${from}/ (row ${fromRow}) may not import ${to}/ (row ${toRow}, above it)`;
  if (toRow === fromRow && !typeOnly)
    return `${from}/ and ${to}/ share row ${fromRow}: import types only (import type ...)`;
  return undefined;
}

describe('layers: imports only point down', () => {
  const folders = [...LAYERS.flat(), ...STANDALONE];

  it('every top-level folder with product code is a layer or stand-alone', () => {
    const product = readdirSync(ROOT).filter(
      (name) => !name.startsWith('.') && statSync(join(ROOT, name)).isDirectory(),
    );
    const other = ['node_modules', 'test', 'bench', 'scripts', 'deploy', 'test-results', 'dist', 'bin'];
    expect(product.filter((name) => !other.includes(name)).sort()).toEqual([...folders].sort());
  });

  it('the npm package ships every layer (package.json "files")', () => {
    const { files } = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as { files: string[] };
    expect(folders.filter((folder) => !files.includes(folder))).toEqual([]);
  });

  it.each(folders)('%s/ imports only from lower layers', (folder) => {
    const problems = sourceFiles(join(ROOT, folder))
      .flatMap(importsOf)
      .map((i) => ({ i, why: violation(i) }))
      .filter(({ why }) => why !== undefined)
      .map(({ i, why }) => `${relative(ROOT, i.file)}:${i.line} imports ${relative(ROOT, i.target)}: ${why}`);
    expect(problems).toEqual([]);
  });

  it('catches an upward import (the rule is not vacuous)', () => {
    const upward: Import = {
      file: join(ROOT, 'core/x.ts'),
      line: 1,
      target: join(ROOT, 'server/mcp.ts'),
      typeOnly: true,
    };
    expect(violation(upward)).toMatch(/may not import server/);
    const sibling: Import = {
      file: join(ROOT, 'sandbox/x.ts'),
      line: 1,
      target: join(ROOT, 'providers/spec.ts'),
      typeOnly: false,
    };
    expect(violation(sibling)).toMatch(/import types only/);
  });
});
