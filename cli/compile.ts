/**
 * The CLI as compiled JavaScript, in dist/js/: what the launcher, `npm start`, `make dev` and the
 * Docker image run when it is up to date. Running the `.ts` sources makes Node load its TypeScript
 * stripper (about 18 MB in every process) and strip each module at start-up; running these files
 * costs neither.
 *
 * Compiling is Node's own type stripping (`module.stripTypeScriptTypes`), which replaces types with
 * blanks, so every line and column of a compiled file is the source's (stack traces read the same),
 * and relative imports of `.ts` modules are rewritten to `.js`. Compiled are the modules `cli/main.ts`
 * loads (following its imports); the other files of their folders (the guest runtimes, the demo
 * specs) are copied beside them. dist/js/SOURCES lists every source with its SHA-256 in
 * `sha256sum` format, written last: the compiled tree is up to date exactly when
 * `sha256sum --check dist/js/SOURCES` passes in the repository, which is what the launcher checks.
 */
import { createHash } from 'node:crypto';
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { mkdir, rename, writeFile } from 'node:fs/promises';
import { dirname, join, relative, resolve } from 'node:path';
import { PACKAGE_ROOT } from '../core/package-root.ts';
import { stripTypes } from '../sandbox/typescript.ts';
import { runtimeImports } from '../temporal/workflow-bundle.ts';

/** Where the compiled CLI goes, and its entry point. */
export const COMPILED_DIR = join(PACKAGE_ROOT, 'dist', 'js');
export const COMPILED_ENTRY = join(COMPILED_DIR, 'cli', 'main.js');
/** The entry points: the CLI, and the failure converter, which the Temporal SDK loads by path. */
const ENTRIES = [join(PACKAGE_ROOT, 'cli', 'main.ts'), join(PACKAGE_ROOT, 'temporal', 'failure-converter.ts')];

/** The `.ts` modules the entry points load at run time, themselves included (type-only imports load nothing). */
export function reachableModules(entries = ENTRIES): string[] {
  const found = new Set<string>();
  const pending = [...entries];
  while (pending.length > 0) {
    const file = pending.pop()!;
    if (found.has(file)) continue;
    found.add(file);
    for (const specifier of runtimeImports(readFileSync(file, 'utf8')))
      if (specifier.startsWith('.') && specifier.endsWith('.ts')) pending.push(resolve(dirname(file), specifier));
  }
  return [...found].sort();
}

/** Every file under `dir` that is not TypeScript: what compiled modules may read beside them. */
function assetsUnder(dir: string): string[] {
  return readdirSync(dir, { recursive: true, encoding: 'utf8' })
    .map((name) => join(dir, name))
    .filter((path) => !path.endsWith('.ts') && statSync(path).isFile());
}

/** A module's JavaScript: types blanked out, `.ts` specifiers of relative imports renamed `.js`. */
export function compileModule(source: string, file: string): string {
  const stripped = stripTypes(source);
  if ('error' in stripped)
    throw new Error(`${file}:${stripped.error.line ?? 0}:${stripped.error.column ?? 0}: ${stripped.error.message}`);
  const js = stripped.code;
  // The same rewrite for static imports, re-exports and `import('…')`; only relative specifiers.
  const compiled = js.replace(
    /(\b(?:from|import)\s*\(?\s*)'(\.{1,2}\/[^']*)\.ts'/g,
    (_, lead: string, path: string) => `${lead}'${path}.js'`,
  );
  const left = runtimeImports(compiled).filter((s) => s.startsWith('.') && !s.endsWith('.js'));
  if (left.length > 0) throw new Error(`${file}: cannot compile the imports of ${left.join(', ')}`);
  return compiled;
}

const sha256 = (data: Buffer | string) => createHash('sha256').update(data).digest('hex');

/** Writes a file whole, under a temporary name first: a process starting meanwhile never reads half of it. */
async function writeAtomically(path: string, data: string | Buffer): Promise<void> {
  await mkdir(dirname(path), { recursive: true });
  const temp = `${path}.${process.pid}.tmp`;
  await writeFile(temp, data);
  await rename(temp, path);
}

/** True when dist/js holds the compilation of the sources as they are now. */
export function compiledUpToDate(dir = COMPILED_DIR): boolean {
  const listed = join(dir, 'SOURCES');
  if (!existsSync(listed)) return false;
  return readFileSync(listed, 'utf8')
    .split('\n')
    .filter(Boolean)
    .every((line) => {
      const [hash, path] = line.split('  ');
      const source = join(PACKAGE_ROOT, path);
      return existsSync(source) && sha256(readFileSync(source)) === hash;
    });
}

/**
 * Compiles the CLI into `dir` (dist/js), unless it is up to date there; returns whether it compiled.
 * Output files are replaced one by one and SOURCES last, so a process that finds SOURCES matching
 * finds every file it lists compiled.
 */
export async function compileCli(dir = COMPILED_DIR): Promise<boolean> {
  if (compiledUpToDate(dir)) return false;
  const modules = reachableModules();
  const folders = [...new Set(modules.map((file) => relative(PACKAGE_ROOT, file).split('/')[0]))];
  const assets = folders.flatMap((folder) => assetsUnder(join(PACKAGE_ROOT, folder)));
  // Each source is read once: SOURCES names the content that was compiled, even if it changes meanwhile.
  const listed: string[] = [];
  for (const file of [...modules, ...assets].sort()) {
    const source = readFileSync(file);
    const path = relative(PACKAGE_ROOT, file);
    const isModule = path.endsWith('.ts');
    await writeAtomically(
      join(dir, isModule ? path.replace(/\.ts$/, '.js') : path),
      isModule ? compileModule(source.toString('utf8'), file) : source,
    );
    listed.push(`${sha256(source)}  ${path}\n`);
  }
  await writeAtomically(join(dir, 'SOURCES'), listed.join(''));
  return true;
}
