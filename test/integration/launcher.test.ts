/**
 * One command name everywhere: README's stdio config for MCP clients, run as written (only the
 * repository path, the Temporal address and the test's own task queue filled in) with the system's
 * Node first on PATH, as an MCP client started from a desktop would run it. On this machine that
 * Node is 20, which cannot run the CLI: the launcher must find the toolchain's.
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import {
  appendFileSync,
  cpSync,
  existsSync,
  mkdtempSync,
  readFileSync,
  rmSync,
  symlinkSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Client as McpClient } from '@modelcontextprotocol/sdk/client/index.js';
import { StdioClientTransport } from '@modelcontextprotocol/sdk/client/stdio.js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { COMPILED_ENTRY, compileCli } from '../../cli/compile.ts';
import { SOURCE_FOLDERS } from '../../scripts/layers.ts';
import { CODEC_KEY_ENV } from '../../temporal/codec.ts';
import {
  CLI,
  mcpOverStdio,
  spawnWorker,
  startInProcessStack,
  testConfig,
  writeConfigFile,
  type InProcessStack,
} from '../harness.ts';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));

interface ServerConfig {
  command: string;
  args: string[];
  env: Record<string, string>;
}

/** README's stdio config block, with the repository where it says /path/to/durable-codemode. */
function readmeStdioConfig(): ServerConfig {
  const readme = readFileSync(join(ROOT, 'README.md'), 'utf8');
  const block = [...readme.matchAll(/```json\n([\s\S]*?)```/g)].map((m) => m[1]).find((b) => b.includes('mcpServers'));
  if (!block) throw new Error('README.md has no MCP client config block');
  const config = JSON.parse(block.replaceAll('/path/to/durable-codemode', ROOT.replace(/\/$/, ''))) as {
    mcpServers: Record<string, ServerConfig>;
  };
  return config.mcpServers['durable-codemode'];
}

/** The directory of the system's `node` (not the toolchain's), and its version. */
function systemNode(): { dir: string; version: string } {
  for (const dir of ['/usr/bin', '/usr/local/bin', '/bin']) {
    const node = join(dir, 'node');
    if (existsSync(node)) return { dir, version: execFileSync(node, ['--version'], { encoding: 'utf8' }).trim() };
  }
  throw new Error('no system node in /usr/bin, /usr/local/bin or /bin');
}

let stack: InProcessStack;
const system = systemNode();
// The system's Node first; then only what any desktop session has.
const PATH = [system.dir, '/usr/local/bin', '/usr/bin', '/bin'].join(':');

beforeAll(async () => {
  // A worker for the client's jobs, on a task queue of this test's own.
  stack = await startInProcessStack(testConfig({}));
});
afterAll(async () => {
  await stack?.close();
});

describe("README's stdio config", () => {
  it('runs the launcher with the Node the toolchain installed, not the first on PATH', () => {
    const { command } = readmeStdioConfig();
    const version = execFileSync(command, ['--version'], {
      encoding: 'utf8',
      env: { PATH, HOME: process.env.HOME ?? '/' },
    });
    const launched = /\(Node (v\d+)\./.exec(version)?.[1];
    expect(Number(launched?.slice(1))).toBeGreaterThanOrEqual(22);
    // The toolchain's own Node when it installed one (this machine: system 20, toolchain 24), which runs this test too.
    if (existsSync(join(ROOT, '.tools', 'node'))) expect(version).toContain(`(Node ${process.version},`);
    // The compiled CLI, compiled by the launcher if it was missing or stale.
    expect(version).toContain(', compiled JavaScript)');
    console.log(`system node ${system.version} first on PATH; the launcher ran the CLI on ${process.version}`);
  });

  it('serves MCP over stdio as an MCP client starts it', async () => {
    const server = readmeStdioConfig();
    expect(server.args).toEqual(['serve', '--stdio']);
    const transport = new StdioClientTransport({
      command: server.command,
      args: server.args,
      env: {
        ...server.env,
        PATH,
        HOME: process.env.HOME ?? '/',
        TEMPORAL_ADDRESS: stack.config.temporal.address,
        DURABLE_CODEMODE_TASK_QUEUE: stack.config.temporal.taskQueue,
      },
      cwd: mkdtempSync(join(tmpdir(), 'dcm-client-')),
      stderr: 'pipe',
    });
    let stderr = '';
    transport.stderr?.on('data', (d) => (stderr += d));
    const client = new McpClient({ name: 'readme-config', version: '0' });
    try {
      await client.connect(transport);
      const { tools } = await client.listTools();
      expect(tools.map((t) => t.name)).toContain('execute');
      const answer = await client.callTool({ name: 'execute', arguments: { code: 'async () => 1 + 1' } });
      expect(answer.structuredContent, stderr).toMatchObject({ status: 'completed', result: 2 });
      expect(stderr).not.toContain('ERR_UNKNOWN_FILE_EXTENSION');
    } finally {
      await client.close();
    }
  });
});

// The launcher resolves symlinks to find the repository (e.g. ~/.local/bin/durable-codemode -> bin/...).
describe('the launcher through a symlink', () => {
  it('finds the repository and its toolchain', () => {
    const link = join(mkdtempSync(join(tmpdir(), 'dcm-bin-')), 'durable-codemode');
    execFileSync('ln', ['-s', join(ROOT, 'bin', 'durable-codemode'), link]);
    const out = execFileSync(link, ['--version'], {
      encoding: 'utf8',
      cwd: dirname(link),
      env: { PATH, HOME: process.env.HOME ?? '/' },
    });
    expect(out).toMatch(/^durable-codemode \d+\.\d+\.\d+ \(Node v(2[2-9]|[3-9]\d)\./);
  });
});

describe('the compiled CLI (dist/js)', () => {
  it('serves what the sources serve, and its worker runs jobs with sealed payloads', async () => {
    await compileCli();
    const configFile = writeConfigFile(testConfig({}));
    // Payload encryption: the Temporal SDK then loads the failure converter by path (its compiled copy here).
    const env = { [CODEC_KEY_ENV]: randomBytes(32).toString('base64') };
    const worker = await spawnWorker(configFile, env, COMPILED_ENTRY);
    const compiled = await mcpOverStdio(configFile, COMPILED_ENTRY, env);
    const sources = await mcpOverStdio(configFile, CLI, env);
    try {
      expect(await compiled.listTools()).toEqual(await sources.listTools());
      const done = await compiled.callTool({ name: 'execute', arguments: { code: 'async () => 1 + 1' } });
      expect(done.structuredContent).toMatchObject({ status: 'completed', result: 2 });
      const failed = await compiled.callTool({
        name: 'execute',
        arguments: { code: "async () => { throw new Error('raised in the compiled worker') }" },
      });
      expect(failed.structuredContent).toMatchObject({ status: 'failed' });
      expect(JSON.stringify(failed.structuredContent)).toContain('raised in the compiled worker');
      // The prebuilt workflow bundle was found from dist/js too (no bundling in the worker).
      expect(worker.output()).not.toContain('built it in');
    } finally {
      await Promise.all([compiled.close(), sources.close()]);
      await worker.kill('SIGTERM');
    }
  }, 120_000);

  it('is compiled again by the launcher when a source changes, and the sources run when it cannot be', () => {
    // A checkout of its own: the product's folders, the launcher and the toolchain script, sharing
    // node_modules and the installed tools with this one.
    const copy = mkdtempSync(join(tmpdir(), 'dcm-checkout-'));
    for (const path of [...SOURCE_FOLDERS, 'bin', 'scripts/toolchain.sh', 'package.json'])
      cpSync(join(ROOT, path), join(copy, path), { recursive: true });
    symlinkSync(join(ROOT, 'node_modules'), join(copy, 'node_modules'));
    if (existsSync(join(ROOT, '.tools'))) symlinkSync(join(ROOT, '.tools'), join(copy, '.tools'));
    const launch = () => {
      const r = spawnSync(join(copy, 'bin', 'durable-codemode'), ['--version'], { encoding: 'utf8', cwd: copy });
      expect(r.status, r.stderr).toBe(0);
      return { version: r.stdout, stderr: r.stderr };
    };
    try {
      const first = launch();
      expect(first.stderr).toMatch(/dist\/js \(compiled in/);
      expect(first.version).toContain(', compiled JavaScript)');
      expect(launch().stderr).not.toContain('compiled in'); // up to date: run as it is
      appendFileSync(join(copy, 'cli', 'options.ts'), '// changed after the build\n');
      const changed = launch();
      expect(changed.stderr).toMatch(/dist\/js \(compiled in/);
      expect(changed.version).toContain(', compiled JavaScript)');
      expect(readFileSync(join(copy, 'dist', 'js', 'cli', 'options.js'), 'utf8')).toContain(
        '// changed after the build',
      );
      // Stale, and dist/ not a directory it can write to: the sources run, and the launcher says why.
      appendFileSync(join(copy, 'cli', 'options.ts'), '// changed again\n');
      rmSync(join(copy, 'dist'), { recursive: true });
      writeFileSync(join(copy, 'dist'), '');
      const fallback = launch();
      expect(fallback.version).toContain(', TypeScript sources)');
      expect(fallback.stderr).toContain('running the TypeScript sources');
    } finally {
      rmSync(copy, { recursive: true, force: true });
    }
  }, 120_000);
});
