/**
 * A worker loads only what it uses: the packages a process loaded are read in a fresh Node process
 * (every module resolution passes a hook), after importing the worker's modules and using a blob store.
 */
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));

/** The packages (node_modules names) a fresh process has loaded after running `body` (an ES module's text). */
function packagesLoadedBy(body: string): string[] {
  const script = `
    import { registerHooks } from 'node:module';
    const loaded = new Set();
    registerHooks({
      resolve(specifier, context, next) {
        const result = next(specifier, context);
        const m = /\\/node_modules\\/((?:@[^/]+\\/)?[^/]+)\\//.exec(result.url);
        if (m) loaded.add(m[1]);
        return result;
      },
    });
    ${body}
    console.log(JSON.stringify([...loaded].sort()));
  `;
  const r = spawnSync(process.execPath, ['--no-node-snapshot', '--input-type=module', '-e', script], {
    cwd: ROOT,
    encoding: 'utf8',
    timeout: 60_000,
  });
  expect(r.status, r.stderr).toBe(0);
  return JSON.parse(r.stdout.trim().split('\n').at(-1)!) as string[];
}

describe('what a worker loads', () => {
  it('loads no S3 client with the local blob store', () => {
    const loaded = packagesLoadedBy(`
      await import('./temporal/worker.ts');
      const { createBlobStore } = await import('./blobs/index.ts');
      const store = createBlobStore({ thresholdBytes: 4096, store: { type: 'local' } }, (await import('node:os')).tmpdir());
      await store.getRecord('lean-imports/none');
    `);
    expect(loaded).toContain('@temporalio/worker');
    expect(loaded.filter((p) => p.startsWith('@aws-sdk/'))).toEqual([]);
  });

  it('loads the S3 client once an S3 store is used', () => {
    const loaded = packagesLoadedBy(`
      const { createBlobStore } = await import('./blobs/index.ts');
      const store = createBlobStore(
        { thresholdBytes: 4096, store: { type: 's3', bucket: 'b', prefix: '', endpoint: 'http://127.0.0.1:9' } },
        '/nonexistent',
      );
      await store.getRecord('lean-imports/none').catch(() => {});
    `);
    expect(loaded).toContain('@aws-sdk/client-s3');
  });
});
