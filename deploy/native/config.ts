/**
 * The product config of the native deployment, derived from the compose one (deploy/config.json)
 * so the two cannot drift apart: compose service addresses (`temporal:7233`, `http://s3:7070`, ...)
 * become this machine's, the image's `/app/` paths the repository's, and `dataDir` a folder of the
 * deployment's state. Everything else is kept as it is.
 *
 *   node deploy/native/config.ts SOURCE REPO_ROOT DATA_DIR temporal:7233=127.0.0.1:17001 ...
 *
 * prints the config on stdout; deploy/native/cluster.sh writes it to <state>/config.json.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';

/** Where the Dockerfile puts the repository's files inside the image. */
const IMAGE_ROOT = '/app/';

/** `host:port` as written in an address (`temporal:7233`) or a URL (`http://s3:7070/...`). */
const SERVICE_ADDRESS = /(^|\/\/)([a-z][a-z0-9-]*):(\d+)/g;

export interface NativePaths {
  /** The repository root, standing in for the image's /app. */
  repoRoot: string;
  /** The workers' data folder, unless the source config names one. */
  dataDir: string;
}

/**
 * `raw` with every compose service address in `addresses` (`{ 'temporal:7233': '127.0.0.1:17001' }`)
 * replaced. An address of a known service on a port the map lacks is an error, not a silent pass:
 * it would point the product at a host that does not resolve outside compose.
 */
export function nativeConfig(raw: unknown, addresses: Record<string, string>, paths: NativePaths): unknown {
  const services = new Set(Object.keys(addresses).map((a) => a.split(':')[0]));
  const rewrite = (value: unknown, path: string): unknown => {
    if (typeof value === 'string') {
      const replaced = value.replace(SERVICE_ADDRESS, (match, lead: string, host: string, port: string) => {
        const target = addresses[`${host}:${port}`];
        if (target) return `${lead}${target}`;
        if (services.has(host))
          throw new Error(
            `${path} names ${host}:${port}, a compose service on a port the native deployment does not map; map it in deploy/native/cluster.sh`,
          );
        return match;
      });
      return replaced.startsWith(IMAGE_ROOT) ? join(paths.repoRoot, replaced.slice(IMAGE_ROOT.length)) : replaced;
    }
    if (Array.isArray(value)) return value.map((v, i) => rewrite(v, `${path}[${i}]`));
    if (value && typeof value === 'object')
      return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, rewrite(v, path ? `${path}.${k}` : k)]));
    return value;
  };
  const config = rewrite(raw, '') as Record<string, unknown>;
  return { dataDir: paths.dataDir, ...config };
}

if (import.meta.main) {
  const [source, repoRoot, dataDir, ...pairs] = process.argv.slice(2);
  if (!source || !repoRoot || !dataDir) {
    console.error('usage: node deploy/native/config.ts SOURCE REPO_ROOT DATA_DIR service:port=host:port ...');
    process.exit(2);
  }
  const addresses = Object.fromEntries(pairs.map((p) => p.split('=') as [string, string]));
  const raw = JSON.parse(readFileSync(source, 'utf8')) as unknown;
  console.log(JSON.stringify(nativeConfig(raw, addresses, { repoRoot, dataDir }), null, 2));
}
