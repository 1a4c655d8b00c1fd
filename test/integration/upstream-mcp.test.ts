/**
 * Upstream MCP servers as providers: their tools are globals in the sandbox, discoverable through
 * search, and every call is a journaled activity, so a job calling them survives a killed worker.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { defaultPayloadConverter } from '@temporalio/common';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { SpecSearch } from '../../sandbox/search.ts';
import { JobService } from '../../jobs/service.ts';
import { readyProviders } from '../../providers/ready.ts';
import {
  connectTestClient,
  eventually,
  spawnWorker,
  startInProcessStack,
  testConfig,
  writeConfigFile,
  type ChildWorker,
  type InProcessStack,
} from '../harness.ts';

const SERVER = fileURLToPath(new URL('../fixtures/upstream-mcp-server.ts', import.meta.url));
const callLog = join(mkdtempSync(join(tmpdir(), 'dcm-upstream-')), 'calls.log');
process.env.UPSTREAM_CALL_LOG = callLog;
const providers = { tools: { mcp: { command: [process.execPath, SERVER], env: ['UPSTREAM_CALL_LOG'] } } };
const recorded = () => readFileSync(callLog, 'utf8').split('\n').filter(Boolean);

describe('an upstream MCP server as a provider', () => {
  let stack: InProcessStack;

  beforeAll(async () => {
    writeFileSync(callLog, '');
    stack = await startInProcessStack(testConfig({ providers }));
  });

  afterAll(async () => {
    await stack?.close();
  });

  it('is discoverable through search', async () => {
    const { specs, upstream } = await readyProviders(stack.config.providers);
    await upstream.close();
    const search = await SpecSearch.create(specs);
    const found = await search.run(
      `async () => ({ provider: [spec.providers.tools.title, spec.providers.tools.tools], tools: spec.tools.map((t) => t.provider + '.' + t.name + ': ' + t.description) })`,
    );
    expect(found).toEqual({
      provider: ['MCP server tools', 3],
      tools: [
        'tools.add: Adds two numbers.',
        'tools.record: Records an id in the call log, slowly (100 ms).',
        'tools.refuse: Always fails.',
      ],
    });
    // The tool's input and output schemas, as TypeScript.
    expect(await search.run(`() => types(spec.tools.find((t) => t.name === 'add'))`)).toBe(
      '// add: Adds two numbers.\ntype Input = {\n  a: number;\n  b: number;\n};\ntype Output = {\n  sum: number;\n};',
    );
    search.dispose();
  });

  it('calls tools from a script; tool errors are catchable', async () => {
    const view = await stack.jobs.execute({
      code: `async () => {
        const { sum } = await tools.add({ a: 2, b: 3 });
        let refused;
        try { await tools.refuse(); } catch (e) { refused = e.name + ': ' + e.message; }
        let invalid;
        try { await tools.add({ a: 'two' }); } catch (e) { invalid = e.name; }
        return { sum, refused, invalid };
      }`,
      waitSeconds: 30,
    });
    expect(view).toMatchObject({
      status: 'completed',
      result: { sum: 5, refused: 'ToolError: tools.refuse failed: upstream says no', invalid: 'ToolError' },
    });
    const history = await stack.client.workflow.getHandle(view.job_id).fetchHistory();
    const rounds = (history.events ?? [])
      .filter((e) => e.activityTaskScheduledEventAttributes?.activityType?.name === 'runRoundHere')
      .map((e) => defaultPayloadConverter.fromPayload(e.userMetadata!.summary!));
    expect(rounds).toEqual(['tools: tool add', 'tools: tool refuse', 'tools: tool add']);
  });
});

describe('an upstream MCP server over Streamable HTTP', () => {
  let upstream: ChildProcess;
  let stack: InProcessStack;

  beforeAll(async () => {
    upstream = spawn(process.execPath, [SERVER, '--http'], { stdio: ['ignore', 'pipe', 'inherit'] });
    const url = await new Promise<string>((resolve, reject) => {
      upstream.stdout!.on('data', (d: Buffer) => {
        const found = /listening (\S+)/.exec(String(d));
        if (found) resolve(found[1]);
      });
      upstream.once('exit', (code) => reject(new Error(`upstream MCP server exited with ${code}`)));
    });
    stack = await startInProcessStack(testConfig({ providers: { remote: { mcp: { url } } } }));
  });

  afterAll(async () => {
    await stack?.close();
    upstream?.kill();
  });

  it('calls its tools like a stdio server', async () => {
    const view = await stack.jobs.execute({
      code: `async () => (await remote.add({ a: 40, b: 2 })).sum`,
      waitSeconds: 30,
    });
    expect(view).toMatchObject({ status: 'completed', result: 42 });
  });
});

describe('tool calls across a killed worker', () => {
  const workers: ChildWorker[] = [];

  afterAll(async () => {
    await Promise.all(workers.map((w) => w.kill('SIGTERM')));
  });

  it('finishes after SIGKILL without repeating a completed tool call', async () => {
    writeFileSync(callLog, '');
    const config = testConfig({ providers });
    const configFile = writeConfigFile(config);
    workers.push(await spawnWorker(configFile));
    const client = await connectTestClient(config);
    const jobs = new JobService(client, config);
    const started = await jobs.execute({
      code: `async () => { for (let i = 0; i < 20; i++) await tools.record({ id: 'call-' + i }); return 'done'; }`,
      waitSeconds: 0,
    });
    await eventually(() => (recorded().length >= 8 ? true : undefined), 60_000, '8 recorded calls');
    await workers[0].kill('SIGKILL');
    workers.push(await spawnWorker(configFile));
    const done = await eventually(async () => {
      const view = await jobs.status(started.job_id, 20);
      return view.status === 'running' ? undefined : view;
    }, 120_000);
    expect(done).toMatchObject({ status: 'completed', result: 'done' });
    const ids = recorded();
    expect(new Set(ids).size).toBe(20);
    // At most the call in flight at the kill ran twice (tools carry no idempotency key).
    expect(ids.length).toBeLessThanOrEqual(21);
    await client.connection.close();
  });
});
