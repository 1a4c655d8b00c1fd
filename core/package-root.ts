/**
 * The package's root directory (where package.json is): the same whether this code runs from the
 * TypeScript sources or from their compiled JavaScript in dist/js/ (cli/compile.ts).
 */
import { findPackageJSON } from 'node:module';
import { dirname } from 'node:path';

const manifest = findPackageJSON(import.meta.url);
if (!manifest) throw new Error(`no package.json above ${import.meta.url}: durable-codemode runs from its package`);

export const PACKAGE_ROOT = dirname(manifest);
