/**
 * The workflow code as one prebuilt file. Bundling it with webpack costs a worker seconds of CPU and
 * about 125 MB of memory at start-up, so it is done once: by the build step (`npm run build`, the
 * Docker image's build) into dist/workflow-bundles/, or else by the first worker that needs it, which
 * caches it in <dataDir>/workflow-bundles/.
 *
 * A bundle's file name carries the content hash of everything it is built from (the workflow
 * sources and the modules they import, the versions of the packages they import, the failure
 * converter variant), computed again at every start: a bundle of other code is never picked, so a
 * worker never runs a stale one.
 */
import { createHash } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import { mkdir, readdir, rename, rm, writeFile } from 'node:fs/promises';
import { findPackageJSON } from 'node:module';
import { dirname, join, relative, resolve } from 'node:path';
import { PACKAGE_ROOT as ROOT } from '../core/package-root.ts';
import { FAILURE_CONVERTER_PATH } from './codec.ts';

const WORKFLOWS_PATH = join(ROOT, 'workflows', 'index.ts');

/** Where the build step puts the bundles (read-only in the Docker image). */
export const PREBUILT_DIR = join(ROOT, 'dist', 'workflow-bundles');

/** Bump to invalidate every bundle built before, e.g. when the bundler's options change. */
const FORMAT = 1;

/** The packages whose code the bundler adds by itself, besides what the sources import. */
const BUNDLER_PACKAGES = ['@temporalio/worker', '@temporalio/workflow'];

/** A bundle to find or build: its sources, and its file name (variant and content hash). */
export interface BundleSpec {
  workflowsPath: string;
  failureConverterPath: string | undefined;
  /** `plain`, or `sealed-failures` with the failure converter of payload encryption. */
  variant: string;
  /** Source files it is built from, absolute. */
  sources: string[];
  /** Packages it includes, as name@version. */
  packages: string[];
  fileName: string;
}

/**
 * What the bundle for this failure converter (undefined: the SDK's default) is built from. Type-only
 * imports are left out: they leave nothing in the bundle.
 */
export function bundleSpec(failureConverterPath: string | undefined, workflowsPath = WORKFLOWS_PATH): BundleSpec {
  const sources = new Set<string>();
  const packages = new Set<string>(BUNDLER_PACKAGES);
  const pending = [workflowsPath, ...(failureConverterPath ? [failureConverterPath] : [])];
  while (pending.length > 0) {
    const file = pending.pop()!;
    if (sources.has(file)) continue;
    sources.add(file);
    for (const specifier of runtimeImports(readFileSync(file, 'utf8'))) {
      if (specifier.startsWith('.')) pending.push(resolve(dirname(file), specifier));
      else packages.add(packageName(specifier));
    }
  }
  const sortedSources = [...sources].sort();
  const versioned = [...packages].sort().map((name) => `${name}@${packageVersion(name)}`);
  const hash = createHash('sha256').update(JSON.stringify({ FORMAT, converter: Boolean(failureConverterPath) }));
  for (const file of sortedSources) hash.update(`\0${relative(ROOT, file)}\0`).update(readFileSync(file));
  hash.update(`\0${versioned.join('\0')}`);
  const variant = failureConverterPath ? 'sealed-failures' : 'plain';
  return {
    workflowsPath,
    failureConverterPath,
    variant,
    sources: sortedSources,
    packages: versioned,
    fileName: `workflows.${variant}.${hash.digest('hex').slice(0, 24)}.js`,
  };
}

/** The specifiers of a module's imports and re-exports that load code (not `import type` / `export type`). */
export function runtimeImports(source: string): string[] {
  const found: string[] = [];
  for (const m of source.matchAll(/^\s*(?:import|export)\s+(type\s+)?(?:[^'"]*?\sfrom\s+)?'([^']+)'/gm))
    if (!m[1]) found.push(m[2]);
  for (const m of source.matchAll(/\bimport\(\s*'([^']+)'\s*\)/g)) found.push(m[1]);
  return found;
}

function packageName(specifier: string): string {
  const parts = specifier.split('/');
  return specifier.startsWith('@') ? parts.slice(0, 2).join('/') : parts[0];
}

/** The installed version of a package (the product's sources share one node_modules). */
function packageVersion(name: string): string {
  const manifest = findPackageJSON(name, import.meta.url);
  if (!manifest) throw new Error(`cannot find the package.json of ${name}, which the workflow code imports`);
  return (JSON.parse(readFileSync(manifest, 'utf8')) as { version?: string }).version ?? 'unknown';
}

/** Builds the bundle into `dir` (replacing older bundles of the same variant there); returns its path. */
export async function buildWorkflowBundle(spec: BundleSpec, dir: string): Promise<string> {
  // Loaded only to build: webpack and its loaders are not needed to find a bundle.
  const { bundleWorkflowCode } = await import('@temporalio/worker');
  const { code } = await bundleWorkflowCode({
    workflowsPath: spec.workflowsPath,
    failureConverterPath: spec.failureConverterPath,
    logger: quietBundlerLogger,
  });
  await mkdir(dir, { recursive: true });
  const path = join(dir, spec.fileName);
  // Written whole under a temporary name, then renamed: a worker never reads half a bundle, and
  // workers building at once just write the same file.
  const temp = `${path}.${process.pid}.tmp`;
  await writeFile(temp, code);
  await rename(temp, path);
  for (const name of await readdir(dir))
    if (name !== spec.fileName && name.startsWith(`workflows.${spec.variant}.`) && name.endsWith('.js'))
      await rm(join(dir, name), { force: true });
  return path;
}

const quietBundlerLogger = { trace() {}, debug() {}, info() {}, warn: console.warn, error: console.error, log() {} };

export interface BundleLocations {
  /** Searched first: where the build step put its bundles. */
  prebuiltDir?: string;
  /** Searched next, and where a bundle built now is cached (the process can write here). */
  cacheDir: string;
}

export interface LocatedBundle {
  path: string;
  /** Set when no bundle of this code was found, so it was built now: how long that took. */
  builtInMs?: number;
}

const located = new Map<string, Promise<LocatedBundle>>();

/**
 * The workflow bundle for this failure converter and the code as it is now: prebuilt, cached, or
 * built now and cached (once per process, whatever the number of workers).
 */
export function workflowBundle(
  failureConverterPath: string | undefined,
  { prebuiltDir = PREBUILT_DIR, cacheDir }: BundleLocations,
): Promise<LocatedBundle> {
  const spec = bundleSpec(failureConverterPath);
  const key = JSON.stringify([spec.fileName, prebuiltDir, cacheDir]);
  let bundle = located.get(key);
  if (!bundle) {
    bundle = locate(spec, prebuiltDir, cacheDir);
    located.set(key, bundle);
    // A failed build is tried again by the next caller.
    void bundle.catch(() => located.delete(key));
  }
  return bundle;
}

async function locate(spec: BundleSpec, prebuiltDir: string, cacheDir: string): Promise<LocatedBundle> {
  for (const dir of [prebuiltDir, cacheDir]) {
    const path = join(dir, spec.fileName);
    if (existsSync(path)) return { path };
  }
  const started = performance.now();
  const path = await buildWorkflowBundle(spec, cacheDir);
  return { path, builtInMs: performance.now() - started };
}

/** The build step: both variants (plain, and sealed failures for payload encryption) in `dir`. */
export async function buildWorkflowBundles(dir = PREBUILT_DIR): Promise<LocatedBundle[]> {
  const bundles = [];
  for (const converter of [undefined, FAILURE_CONVERTER_PATH])
    bundles.push(await workflowBundle(converter, { prebuiltDir: dir, cacheDir: dir }));
  return bundles;
}
