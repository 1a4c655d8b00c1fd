/**
 * Inputs of any size up to limits.maxInputBytes, over both transports: they travel to the worker by
 * reference (blob store), never through workflow history; over the limit, the same error before any
 * job starts, whichever the transport, and an HTTP body too large to hold such an input gets it as a
 * JSON-RPC error.
 */
import { setTimeout as delay } from 'node:timers/promises';
import type { Client as McpClient } from '@modelcontextprotocol/sdk/client/index.js';
import type { CallToolResult } from '@modelcontextprotocol/sdk/types.js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  demoProvidersConfig,
  startCrmApi,
  startSheetsApi,
  type CrmApi,
  type SheetsApi,
} from '../../demo-apis/index.ts';
import { maxRequestBytes } from '../../jobs/input-limits.ts';
import { readyProviders } from '../../providers/ready.ts';
import { SpecSearch } from '../../sandbox/search.ts';
import { startMcpHttpServer, type McpHttpServer } from '../../server/http.ts';
import {
  mcpOverHttp,
  mcpOverStdio,
  resultBudget,
  startInProcessStack,
  testConfig,
  writeConfigFile,
  type InProcessStack,
} from '../harness.ts';

const MAX_INPUT_BYTES = 21 * 1024 * 1024;
const TIMEOUT = { timeout: 180_000 };

let crm: CrmApi;
let sheets: SheetsApi;
let stack: InProcessStack;
let http: McpHttpServer;
const clients: Record<string, McpClient> = {};

beforeAll(async () => {
  crm = await startCrmApi();
  sheets = await startSheetsApi({ sheets: { leads: 5 } });
  const config = testConfig({
    providers: demoProvidersConfig({ crm, sheets }),
    limits: { maxInputBytes: MAX_INPUT_BYTES },
  });
  stack = await startInProcessStack(config);
  http = await startMcpHttpServer(
    {
      jobs: stack.jobs,
      budget: resultBudget(config),
      search: await SpecSearch.create((await readyProviders(config.providers)).specs),
      providers: Object.keys(config.providers),
      defaultWaitSeconds: 20,
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

/** Jobs started on this test's task queue. */
async function jobCount(): Promise<number> {
  const { count } = await stack.client.workflow.count(`TaskQueue = '${stack.config.temporal.taskQueue}'`);
  return count;
}

/** An input of about `bytes` of JSON: rows of leads. */
function inputOf(bytes: number) {
  const row = (i: number) => ({ id: i, name: `Lead ${i}`, email: `lead${i}@example.com`, note: 'n'.repeat(40) });
  const rowBytes = JSON.stringify(row(100_000)).length + 1;
  return { rows: Array.from({ length: Math.ceil(bytes / rowBytes) }, (_, i) => row(i)) };
}

const SCRIPT = `async () => ({ rows: input.rows.length, bytes: JSON.stringify(input).length, last: input.rows.at(-1).email })`;

describe.each(['stdio', 'http'])('over %s', (transport) => {
  it.each([
    ['3 MB', 3_000_000],
    ['20 MB', 20_000_000],
  ])('runs a job with a %s input, which stays out of workflow history', async (_, bytes) => {
    const input = inputOf(bytes);
    const answer = (await clients[transport].callTool(
      { name: 'execute', arguments: { code: SCRIPT, input, wait_seconds: 60 } },
      undefined,
      TIMEOUT,
    )) as CallToolResult;
    const view = answer.structuredContent as { job_id: string; status: string; result: unknown };
    expect(view).toMatchObject({
      status: 'completed',
      result: {
        rows: input.rows.length,
        bytes: JSON.stringify(input).length,
        last: `lead${input.rows.length - 1}@example.com`,
      },
    });
    const history = await stack.client.workflow.getHandle(view.job_id).fetchHistory();
    expect(JSON.stringify(history).length).toBeLessThan(200_000);
  });
});

describe('an input over limits.maxInputBytes', () => {
  it('is refused before any job starts, with the same error over stdio and HTTP', async () => {
    const jobsBefore = await jobCount();
    const input = inputOf(MAX_INPUT_BYTES + 1_000_000);
    const answers = await Promise.all(
      ['stdio', 'http'].map(
        async (transport) =>
          (await clients[transport].callTool(
            { name: 'execute', arguments: { code: SCRIPT, input } },
            undefined,
            TIMEOUT,
          )) as CallToolResult,
      ),
    );
    const bytes = Buffer.byteLength(JSON.stringify(input)).toLocaleString('en-US');
    for (const answer of answers) {
      expect(answer.isError).toBe(true);
      expect(answer.structuredContent).toEqual({
        error: {
          name: 'InputTooLargeError',
          message: expect.stringMatching(
            new RegExp(`^The input is ${bytes} bytes .* the limit is ${MAX_INPUT_BYTES.toLocaleString('en-US')} bytes`),
          ) as string,
          todo: expect.stringContaining('limits.maxInputBytes') as string,
        },
      });
    }
    expect(answers[0]).toEqual(answers[1]);
    await delay(1_000); // visibility lags a little behind a start
    expect(await jobCount()).toBe(jobsBefore);
  });

  it('in an HTTP body too large to hold an input within the limit is answered as a JSON-RPC error', async () => {
    const limit = maxRequestBytes(stack.jobs.limits);
    const response = await fetch(http.url, {
      method: 'POST',
      headers: { 'content-type': 'application/json', accept: 'application/json, text/event-stream' },
      body: JSON.stringify({
        jsonrpc: '2.0',
        id: 1,
        method: 'tools/call',
        params: { name: 'execute', arguments: { code: SCRIPT, input: 'x'.repeat(limit) } },
      }),
    });
    expect(response.status).toBe(413);
    expect(await response.json()).toEqual({
      jsonrpc: '2.0',
      id: null,
      error: {
        code: -32000,
        message: expect.stringContaining(
          `so its input is over the limit of ${MAX_INPUT_BYTES.toLocaleString('en-US')} bytes`,
        ) as string,
        data: { name: 'InputTooLargeError' },
      },
    });
  });
});
