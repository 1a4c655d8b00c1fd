/**
 * The MCP surface over both transports, against a real worker and the demo APIs: the same tools,
 * the same answers, and tool definitions that fit in about 1,000 tokens.
 */
import { request } from 'node:http';
import { getEncoding } from 'js-tiktoken';
import type { Client as McpClient } from '@modelcontextprotocol/sdk/client/index.js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  demoProvidersConfig,
  startCrmApi,
  startSheetsApi,
  type CrmApi,
  type SheetsApi,
} from '../../demo-apis/index.ts';
import { readyProviders } from '../../providers/ready.ts';
import { exampleCall } from '../../server/mcp.ts';
import { SpecSearch } from '../../sandbox/search.ts';
import { startMcpHttpServer, type McpHttpServer } from '../../server/http.ts';
import {
  mcpOverHttp,
  mcpOverStdio,
  startInProcessStack,
  testConfig,
  writeConfigFile,
  type InProcessStack,
  resultBudget,
} from '../harness.ts';

let crm: CrmApi;
let sheets: SheetsApi;
let stack: InProcessStack;
let http: McpHttpServer;
const clients: Record<string, McpClient> = {};

beforeAll(async () => {
  crm = await startCrmApi();
  sheets = await startSheetsApi({ sheets: { leads: 5 } });
  const config = testConfig({ providers: demoProvidersConfig({ crm, sheets }) });
  stack = await startInProcessStack(config);
  const search = await SpecSearch.create((await readyProviders(config.providers)).specs);
  http = await startMcpHttpServer(
    {
      jobs: stack.jobs,
      budget: resultBudget(config),
      search,
      providers: Object.keys(config.providers),
      defaultWaitSeconds: 20,
      example: await exampleCall(search),
    },
    { host: '127.0.0.1', port: 0 },
  );
  clients.http = await mcpOverHttp(http.url);
  clients.stdio = await mcpOverStdio(writeConfigFile(config));
});

afterAll(async () => {
  for (const client of Object.values(clients)) await client.close();
  await http?.close();
  await stack?.close();
  await crm?.close();
  await sheets?.close();
});

/** fetch() cannot set Host (a forbidden header), so DNS-rebinding checks need node:http. */
function postWithHost(url: string, host: string, body: string): Promise<number> {
  return new Promise((resolve, reject) => {
    const req = request(
      url,
      {
        method: 'POST',
        headers: { host, 'content-type': 'application/json', accept: 'application/json, text/event-stream' },
      },
      (res) => {
        res.resume();
        resolve(res.statusCode!);
      },
    );
    req.on('error', reject);
    req.end(body);
  });
}

function structured(result: Awaited<ReturnType<McpClient['callTool']>>): Record<string, unknown> {
  expect(result.isError, JSON.stringify(result.content)).toBeFalsy();
  const text = (result.content as Array<{ type: string; text: string }>)[0].text;
  expect(JSON.parse(text)).toEqual(result.structuredContent);
  return result.structuredContent as Record<string, unknown>;
}

describe.each(['http', 'stdio'])('MCP over %s', (transport) => {
  it('lists search, execute and the job tools within 1,000 tokens', async () => {
    const { tools } = await clients[transport].listTools();
    expect(tools.map((t) => t.name).sort()).toEqual(['execute', 'job', 'job_resume', 'search']);
    const tokens = getEncoding('o200k_base').encode(JSON.stringify(tools)).length;
    console.log(`tools/list over ${transport}: ${tokens} tokens (o200k_base)`);
    expect(tokens).toBeLessThanOrEqual(1000);
  });

  it('searches the specs with code', async () => {
    const result = await clients[transport].callTool({
      name: 'search',
      arguments: {
        code: `async () => spec.operations.filter((o) => o.path.startsWith('/leads') && o.method === 'POST').map((o) => o.path)`,
      },
    });
    expect(structured(result).result).toEqual(expect.arrayContaining(['/leads', '/leads/batch']));
  });

  it('executes inline, then a long job by id through the job tool', async () => {
    const inline = structured(
      await clients[transport].callTool({
        name: 'execute',
        arguments: { code: `async () => (await sheets.request({ method: 'GET', path: '/sheets/leads' })).rows` },
      }),
    );
    expect(inline).toMatchObject({ status: 'completed', result: 5 });

    const started = structured(
      await clients[transport].callTool({
        name: 'execute',
        arguments: { code: `async () => { await sleep(2000); return input; }`, input: { ok: 1 }, wait_seconds: 0 },
      }),
    );
    expect(started).toMatchObject({ status: 'running', job_id: expect.stringMatching(/^job-/) });
    const done = structured(
      await clients[transport].callTool({
        name: 'job',
        arguments: { job_id: started.job_id, wait_seconds: 30 },
      }),
    );
    expect(done).toMatchObject({ status: 'completed', result: { ok: 1 } });
  });

  it("pages an each()'s failed items through the job tool", async () => {
    const done = structured(
      await clients[transport].callTool({
        name: 'execute',
        arguments: {
          code: `async () => each(input, async (n) => { if (n % 3 === 0) throw new Error('no multiples of 3: ' + n); return n; })`,
          input: [1, 2, 3, 4, 5, 6, 7],
          wait_seconds: 30,
        },
      }),
    );
    expect(done).toMatchObject({
      status: 'completed',
      result: { done: 5, failed: 2, skipped: 0 },
      ledger: { counts: { items: { total: 7, done: 5, failed: 2 } } },
    });
    const page = structured(
      await clients[transport].callTool({ name: 'job', arguments: { job_id: done.job_id, failures: 1 } }),
    );
    expect(page).toMatchObject({ failures_page: 1, failures_pages: 1, failures_total: 2 });
    expect((page.failures as Array<{ item: number; error: { message: string } }>).map((f) => f.item)).toEqual([3, 6]);
    const past = await clients[transport].callTool({ name: 'job', arguments: { job_id: done.job_id, failures: 2 } });
    expect(past).toMatchObject({ isError: true, structuredContent: { error: { name: 'ResultPageError' } } });
  });

  it('answers a syntax error as a tool error with line and column, starting nothing', async () => {
    const result = await clients[transport].callTool({
      name: 'execute',
      arguments: { code: 'async () => {\n  return ]\n}' },
    });
    expect(result.isError).toBe(true);
    expect((result.content as Array<{ text: string }>)[0].text).toMatch(/^SyntaxError at line 2, column \d+/);
    expect(result.structuredContent).toMatchObject({
      error: { name: 'ScriptSyntaxError', message: expect.stringMatching(/^SyntaxError at line 2/), line: 2 },
    });
    expect((result.structuredContent as { error: { todo: string } }).error.todo).toContain('async arrow function');
  });

  it('answers every error with its name, message and what to do', async () => {
    const missing = await clients[transport].callTool({ name: 'job', arguments: { job_id: 'no-such-job' } });
    expect(missing).toMatchObject({
      isError: true,
      structuredContent: {
        error: {
          name: 'JobNotFoundError',
          message: expect.stringContaining('No job "no-such-job"'),
          todo: expect.any(String),
        },
      },
    });
    const unknownTool = await clients[transport].callTool({ name: 'run_script', arguments: { code: '1' } });
    expect(unknownTool).toMatchObject({
      isError: true,
      structuredContent: { error: { name: 'InvalidArgumentsError', message: expect.stringContaining('run_script') } },
    });
    const mistyped = await clients[transport].callTool({ name: 'job', arguments: { job_id: 42 } });
    expect(mistyped).toMatchObject({
      isError: true,
      structuredContent: { error: { name: 'InvalidArgumentsError', message: expect.stringContaining('job_id') } },
    });
  });

  it('refuses unknown arguments, naming the accepted ones, and starts no job', async () => {
    const jobsHere = async () =>
      (await stack.client.workflow.count(`TaskQueue = '${stack.config.temporal.taskQueue}'`)).count;
    const before = await jobsHere();
    const result = await clients[transport].callTool({
      name: 'execute',
      arguments: { code: 'async () => 1', job_id: 'import-leads-12345678' },
    });
    expect(result.isError).toBe(true);
    const { error } = result.structuredContent as { error: { name: string; message: string } };
    expect(error.name).toBe('InvalidArgumentsError');
    expect(error.message).toContain('unknown argument "job_id"; execute takes code, input, wait_seconds, name');
    expect((result.content as Array<{ text: string }>)[0].text).toBe(error.message);
    expect(await jobsHere()).toBe(before);
  });

  it("takes the execute example from the configured providers' specs", async () => {
    const { tools } = await clients[transport].listTools();
    const description = tools.find((t) => t.name === 'execute')!.description!;
    const example =
      /Example: async \(\) => \{ const r = await (\w+)\.request\(\{ method: '(\w+)', path: '([^']+)' \}\)/.exec(
        description,
      );
    expect(example, description).not.toBeNull();
    const [, provider, method, path] = example!;
    const ops = structured(
      await clients[transport].callTool({
        name: 'search',
        arguments: { code: `async () => spec.operations.map((o) => o.provider + ' ' + o.method + ' ' + o.path)` },
      }),
    ).result as string[];
    expect(ops).toContain(`${provider} ${method} ${path}`);
    // And it runs as written.
    const ran = structured(
      await clients[transport].callTool({
        name: 'execute',
        arguments: {
          code: `async () => { const r = await ${provider}.request({ method: '${method}', path: '${path}' }); return typeof r; }`,
        },
      }),
    );
    expect(ran).toMatchObject({ status: 'completed', result: 'object' });
  });

  it('marks a failed job as a tool error that still carries the job', async () => {
    const result = await clients[transport].callTool({
      name: 'execute',
      arguments: { code: 'async () => {\n  null.x;\n}' },
    });
    expect(result.isError).toBe(true);
    expect(result.structuredContent).toMatchObject({ status: 'failed', error: { name: 'TypeError', line: 2 } });
  });

  it('cancels a job', async () => {
    const started = structured(
      await clients[transport].callTool({
        name: 'execute',
        arguments: { code: 'async () => sleep(600000)', wait_seconds: 0 },
      }),
    );
    const cancelled = structured(
      await clients[transport].callTool({ name: 'job', arguments: { job_id: started.job_id, action: 'cancel' } }),
    );
    expect(cancelled.status).toBe('cancelled');
  });
});

describe('MCP HTTP transport', () => {
  it('rejects foreign Host headers (DNS rebinding) and non-POST methods', async () => {
    const body = JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'tools/list' });
    const headers = { 'content-type': 'application/json', accept: 'application/json, text/event-stream' };
    expect(await postWithHost(http.url, 'evil.example', body)).toBe(403);
    expect(await postWithHost(http.url, new URL(http.url).host, body)).toBe(200);
    expect((await fetch(http.url, { method: 'GET' })).status).toBe(405);
    const malformed = await fetch(http.url, { method: 'POST', headers, body: '{not json' });
    expect(malformed.status).toBe(400);
  });
});
