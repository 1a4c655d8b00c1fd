/**
 * The compiled CLI (cli/compile.ts): each module's JavaScript keeps the source's lines and columns
 * and imports the compiled siblings; dist/js holds every module the CLI loads, runs, and says
 * whether it is up to date in a form `sha256sum --check` (the launcher's test) agrees with.
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, relative } from 'node:path';
import { pathToFileURL } from 'node:url';
import { beforeAll, describe, expect, it } from 'vitest';
import {
  COMPILED_DIR,
  COMPILED_ENTRY,
  compileCli,
  compiledUpToDate,
  compileModule,
  reachableModules,
} from '../../cli/compile.ts';
import { PACKAGE_ROOT } from '../../core/package-root.ts';

describe('a compiled module', () => {
  const source = [
    "import type { Config } from '../core/config.ts';",
    "import { z, type ZodType } from 'zod';",
    "import { a, type B } from './a.ts';",
    'import {',
    '  c,',
    "} from '../c.ts';",
    "export { d } from './d.ts';",
    "export type { E } from './e.ts';",
    "import './side-effect.ts';",
    'export async function load(config: Config): Promise<ZodType> {',
    "  const { f } = await import('./f.ts');",
    "  const file = new URL('./data.ts', import.meta.url);",
    '  return f(a as B, c, z, config, file);',
    '}',
  ].join('\n');
  const compiled = compileModule(source, 'example.ts');

  it('imports the compiled siblings of relative .ts modules, and nothing else changes name', () => {
    expect(compiled).toContain("import { a,        } from './a.js';");
    expect(compiled).toContain("} from '../c.js';");
    expect(compiled).toContain("export { d } from './d.js';");
    expect(compiled).toContain("import './side-effect.js';");
    expect(compiled).toContain("await import('./f.js')");
    expect(compiled).toContain("from 'zod'");
    // A path that is not an import (here: a file read at run time) is left as written.
    expect(compiled).toContain("new URL('./data.ts', import.meta.url)");
    expect(compiled).not.toMatch(/Config|ZodType|\bB\b|e\.ts/);
  });

  it('keeps every line and column of the source', () => {
    const sourceLines = source.split('\n');
    const lines = compiled.split('\n');
    expect(lines.length).toBe(sourceLines.length);
    // Stack traces point into the source: whatever stays is where it was.
    expect(lines.map((l) => l.indexOf('return f('))).toEqual(sourceLines.map((l) => l.indexOf('return f(')));
    expect(lines.map((l) => l.indexOf('new URL'))).toEqual(sourceLines.map((l) => l.indexOf('new URL')));
  });

  it('refuses TypeScript that needs more than stripping, naming the file and where', () => {
    expect(() => compileModule('enum Color { Red }\n', 'colors.ts')).toThrow(/^colors\.ts:1:\d+: /);
  });
});

describe('dist/js', () => {
  beforeAll(async () => {
    await compileCli();
  }, 60_000);

  it('holds every module the CLI loads, compiled, and the files read beside them', () => {
    const modules = reachableModules().map((file) => relative(PACKAGE_ROOT, file));
    expect(modules).toContain('cli/serve.ts');
    expect(modules).toContain('temporal/failure-converter.ts'); // loaded by the Temporal SDK by path
    expect(modules.filter((m) => m.startsWith('test/') || m.startsWith('bench/'))).toEqual([]);
    for (const module of modules)
      expect(existsSync(join(COMPILED_DIR, module.replace(/\.ts$/, '.js'))), module).toBe(true);
    expect(existsSync(join(COMPILED_DIR, 'sandbox/guest/runtime.js'))).toBe(true);
    expect(existsSync(join(COMPILED_DIR, 'demo-apis/crm.openapi.json'))).toBe(true);
  });

  it('runs: the compiled CLI says so', () => {
    const version = execFileSync(process.execPath, ['--no-node-snapshot', COMPILED_ENTRY, '--version'], {
      encoding: 'utf8',
    });
    expect(version).toMatch(/^durable-codemode \d+\.\d+\.\d+ \(Node v\d+[^,]*, compiled JavaScript\)/);
  });

  it('loads no TypeScript: no module, and the failure converter the Temporal SDK loads by path', () => {
    const url = (path: string) => JSON.stringify(pathToFileURL(join(COMPILED_DIR, path)).href);
    const script = `
      import { registerHooks } from 'node:module';
      const loaded = [];
      registerHooks({ resolve(specifier, context, next) { const r = next(specifier, context); loaded.push(r.url); return r; } });
      await import(${url('cli/serve.js')});
      await import(${url('cli/worker.js')});
      const { dataConverter } = await import(${url('temporal/codec.js')});
      const converter = dataConverter({ DURABLE_CODEMODE_CODEC_KEY: Buffer.alloc(32).toString('base64') });
      console.log(JSON.stringify({ loaded, converter: converter.failureConverterPath }));`;
    const r = spawnSync(process.execPath, ['--no-node-snapshot', '--input-type=module', '-e', script], {
      encoding: 'utf8',
    });
    expect(r.status, r.stderr).toBe(0);
    const { loaded, converter } = JSON.parse(r.stdout.trim().split('\n').at(-1)!) as {
      loaded: string[];
      converter: string;
    };
    expect(loaded.filter((u) => u.includes('/dist/js/')).length).toBeGreaterThan(50);
    expect(loaded.filter((u) => u.endsWith('.ts'))).toEqual([]);
    expect(converter).toBe(join(COMPILED_DIR, 'temporal', 'failure-converter.js'));
    expect(existsSync(converter)).toBe(true);
  });

  it('keeps the code V8 compiled in a cache on disk for the next start', () => {
    const tmp = mkdtempSync(join(tmpdir(), 'dcm-tmpdir-'));
    const env: NodeJS.ProcessEnv = { ...process.env, TMPDIR: tmp };
    delete env.NODE_COMPILE_CACHE;
    // `serve` without --stdio or --http: its modules load, then it stops with a usage error.
    const r = spawnSync(process.execPath, ['--no-node-snapshot', COMPILED_ENTRY, 'serve'], { env, encoding: 'utf8' });
    expect(r.stderr).toContain('serve needs exactly one of --stdio or --http');
    const cached = readdirSync(join(tmp, 'node-compile-cache'), { recursive: true, withFileTypes: true });
    expect(cached.filter((entry) => entry.isFile()).length).toBeGreaterThan(50);
  });

  it('is up to date exactly when sha256sum --check passes on SOURCES', () => {
    const listed = join(COMPILED_DIR, 'SOURCES');
    const sources = readFileSync(listed, 'utf8');
    expect(sources).toContain('  cli/main.ts\n');
    expect(sources).toContain('  sandbox/guest/runtime.js\n');
    expect(compiledUpToDate()).toBe(true);
    const check = (file: string) => spawnSync('sha256sum', ['--status', '--check', file], { cwd: PACKAGE_ROOT }).status;
    expect(check(listed)).toBe(0);
    // One source changed since: both say stale.
    const stale = mkdtempSync(join(tmpdir(), 'dcm-compiled-'));
    writeFileSync(join(stale, 'SOURCES'), sources.replace(/^[0-9a-f]{64}(?= {2}cli\/main\.ts$)/m, '0'.repeat(64)));
    expect(compiledUpToDate(stale)).toBe(false);
    expect(check(join(stale, 'SOURCES'))).not.toBe(0);
  });
});
