/** The product's release, as package.json names it: what `--version` prints and MCP peers are told. */
import { readFileSync } from 'node:fs';

export const PRODUCT_VERSION = (
  JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8')) as { version: string }
).version;
