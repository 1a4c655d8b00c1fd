/**
 * A worker loads only what it uses: the packages a process loaded are read in a fresh Node process
 * (every module resolution passes a hook), after importing the worker's modules and using a blob store.
 */
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));

/**
 * The packages (node_modules names) a fresh process has loaded after running `body` (an ES module's
 * text); with `files`, the module files it loaded (paths in the repository or in node_modules).
 */
function packagesLoadedBy(body: string, files = false): string[] {
  const script = `
    import { registerHooks } from 'node:module';
    const loaded = new Set();
    registerHooks({
      resolve(specifier, context, next) {
        const result = next(specifier, context);
        if (${files}) {
          if (result.url.startsWith('file://')) loaded.add(result.url.slice(${JSON.stringify(`file://${ROOT}`)}.length));
        } else {
          const m = /\\/node_modules\\/((?:@[^/]+\\/)?[^/]+)\\//.exec(result.url);
          if (m) loaded.add(m[1]);
        }
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

describe('each command loads only what it uses', () => {
  const loadedBy = (command: string) => packagesLoadedBy(`await import('./cli/${command}.ts');`, true);

  it('a worker loads no MCP server, search sandbox, tokenizer, demo API or test utility', () => {
    const loaded = loadedBy('worker');
    expect(loaded).toContain('temporal/worker.ts');
    expect(
      loaded.filter((f) =>
        /^(server\/(?!config\.ts)|sandbox\/search|demo-apis\/(crm|sheets|http-api|index)\.ts|test\/)|node_modules\/(@modelcontextprotocol\/sdk\/dist\/esm\/server\/(mcp|streamableHttp|stdio)|js-tiktoken|@temporalio\/testing|vitest)/.test(
          f,
        ),
      ),
    ).toEqual([]);
  });

  it('serve and jobs load no worker SDK, no demo API and no test utility', () => {
    for (const command of ['serve', 'jobs']) {
      const loaded = loadedBy(command);
      expect(
        loaded.filter((f) =>
          /^(temporal\/worker\.ts|demo-apis\/(crm|sheets|http-api|index)\.ts|test\/)|node_modules\/(@temporalio\/(worker|testing)|vitest)\//.test(
            f,
          ),
        ),
        command,
      ).toEqual([]);
    }
  });

  it('no product code imports @temporalio/testing', () => {
    const loaded = packagesLoadedBy(
      `await import('./cli/dev.ts'); await import('./cli/worker.ts'); await import('./cli/serve.ts'); await import('./cli/jobs.ts');`,
    );
    expect(loaded).not.toContain('@temporalio/testing');
    expect(loaded).toContain('@temporalio/worker');
  });
});
