/**
 * Long calls the MCP way, with an MCP client from the TypeScript SDK over stdio and HTTP against a
 * real worker: waits are capped below the client's 60 s request timeout and always answer the job
 * id, requests with a progressToken get progress notifications (on each change and every ~10 s),
 * and `execute` runs as an MCP task (task id = job id) that survives an MCP server restart and is
 * invisible to other principals.
 */
import type { Client as McpClient } from '@modelcontextprotocol/sdk/client/index.js';
import { CreateTaskResultSchema } from '@modelcontextprotocol/sdk/experimental/tasks/types.js';
import { CallToolResultSchema, type Progress } from '@modelcontextprotocol/sdk/types.js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadTokens } from '../../server/auth.ts';
import { SpecSearch } from '../../sandbox/search.ts';
import { startMcpHttpServer, type McpHttpServer } from '../../server/http.ts';
import type { McpDeps } from '../../server/mcp.ts';
import {
  eventually,
  mcpOverHttp,
  mcpOverStdio,
  resultBudget,
  startInProcessStack,
  testConfig,
  writeConfigFile,
  type InProcessStack,
} from '../harness.ts';

const ALICE = 'alice-token-0123456789abcdef';
const BOB = 'bob-token-0123456789abcdefgh';

let stack: InProcessStack;
let deps: McpDeps;
let open: McpHttpServer;
let authed: McpHttpServer;
const clients: Record<string, McpClient> = {};

beforeAll(async () => {
  stack = await startInProcessStack(testConfig({}));
  deps = {
    jobs: stack.jobs,
    budget: resultBudget(stack.config),
    search: await SpecSearch.create([]),
    providers: [],
    defaultWaitSeconds: 20,
  };
  open = await startMcpHttpServer(deps, { host: '127.0.0.1', port: 0 });
  const tokens = loadTokens(stack.config.http, { DURABLE_CODEMODE_HTTP_TOKENS: `alice:${ALICE},bob:${BOB}` });
  authed = await startMcpHttpServer(deps, { host: '127.0.0.1', port: 0, tokens });
  clients.http = await mcpOverHttp(open.url);
  clients.stdio = await mcpOverStdio(writeConfigFile(stack.config));
});

afterAll(async () => {
  for (const client of Object.values(clients)) await client.close();
  await open?.close();
  await authed?.close();
  await stack?.close();
});

type Structured = Record<string, unknown>;

describe.each(['http', 'stdio'])('over %s', (transport) => {
  it('answers a 55 s wait before the client times out (60 s), with the job id and a notification every ~10 s', async () => {
    const notes: Progress[] = [];
    const started = Date.now();
    const result = await clients[transport].callTool(
      { name: 'execute', arguments: { code: 'async () => { await sleep(600000); return 1; }', wait_seconds: 55 } },
      CallToolResultSchema,
      { onprogress: (p) => notes.push(p) },
    );
    const took = Date.now() - started;
    const answer = result.structuredContent as Structured;
    expect(answer).toMatchObject({ status: 'running', job_id: expect.stringMatching(/^job-/) });
    console.log(`${transport}: a 55 s wait answered after ${took} ms with ${notes.length} progress notifications`);
    expect(took).toBeLessThan(60_000);
    // The first notification names the job, so even a client that gives up has its id.
    expect(notes[0].message).toContain(answer.job_id as string);
    // Nothing changes in the job: the keep-alives alone arrive at about 10, 20, 30 and 40 s.
    expect(notes.length).toBeGreaterThanOrEqual(5);
    for (let i = 1; i < notes.length; i++) expect(notes[i].progress).toBeGreaterThan(notes[i - 1].progress);
    await clients[transport].callTool({ name: 'job', arguments: { job_id: answer.job_id, action: 'cancel' } });
  });

  it("sends a notification on each change of the job's progress while the job tool waits", async () => {
    const started = (
      await clients[transport].callTool({
        name: 'execute',
        arguments: {
          code: `async () => { for (let i = 1; i <= 3; i++) { await sleep(1500); progress(i, 3, 'step ' + i); } return 'done'; }`,
          wait_seconds: 0,
        },
      })
    ).structuredContent as Structured;
    const notes: Progress[] = [];
    const done = await clients[transport].callTool(
      { name: 'job', arguments: { job_id: started.job_id, wait_seconds: 40 } },
      CallToolResultSchema,
      { onprogress: (p) => notes.push(p) },
    );
    expect(done.structuredContent).toMatchObject({ status: 'completed', result: 'done' });
    const messages = notes.map((n) => n.message);
    expect(messages).toEqual(expect.arrayContaining([expect.stringMatching(/1 \/ 3 — step 1$/)]));
    expect(messages).toEqual(expect.arrayContaining([expect.stringMatching(/2 \/ 3 — step 2$/)]));
    expect(notes.find((n) => n.message?.endsWith('step 2'))).toMatchObject({ progress: 2, total: 3 });
  });

  it('runs execute as a task: task id = job id, polled to its result', async () => {
    const client = clients[transport];
    const { task } = await client.request(
      {
        method: 'tools/call',
        params: {
          name: 'execute',
          arguments: { code: `async () => { await sleep(1500); progress(1, 1, 'slept'); return { ok: true }; }` },
          task: { ttl: 60_000 },
        },
      },
      CreateTaskResultSchema,
    );
    expect(task).toMatchObject({ taskId: expect.stringMatching(/^job-/), status: 'working' });
    const ended = await eventually(async () => {
      const now = await client.experimental.tasks.getTask(task.taskId);
      return now.status === 'working' ? undefined : now;
    });
    expect(ended).toMatchObject({ status: 'completed', statusMessage: expect.stringContaining('slept') });
    const result = await client.experimental.tasks.getTaskResult(task.taskId, CallToolResultSchema);
    expect(result.structuredContent).toMatchObject({ job_id: task.taskId, status: 'completed', result: { ok: true } });
    // The task is the job: the job tool sees it too.
    const job = await client.callTool({ name: 'job', arguments: { job_id: task.taskId } });
    expect(job.structuredContent).toMatchObject({ status: 'completed' });
  });
});

describe('tasks over HTTP', () => {
  it('survive an MCP server restart: another server answers the same task', async () => {
    const first = await startMcpHttpServer(deps, { host: '127.0.0.1', port: 0 });
    const before = await mcpOverHttp(first.url);
    const { task } = await before.request(
      {
        method: 'tools/call',
        params: { name: 'execute', arguments: { code: `async () => { await sleep(3000); return 42; }` }, task: {} },
      },
      CreateTaskResultSchema,
    );
    await before.close();
    await first.close();

    const second = await startMcpHttpServer(deps, { host: '127.0.0.1', port: 0 });
    const after = await mcpOverHttp(second.url);
    try {
      expect((await after.experimental.tasks.getTask(task.taskId)).status).toBe('working');
      // tasks/result blocks until the task ends.
      const result = await after.experimental.tasks.getTaskResult(task.taskId, CallToolResultSchema);
      expect(result.structuredContent).toMatchObject({ status: 'completed', result: 42 });
      expect((await after.experimental.tasks.listTasks()).tasks.map((t) => t.taskId)).toContain(task.taskId);
    } finally {
      await after.close();
      await second.close();
    }
  });

  it("cancels the job with tasks/cancel, and hides a principal's tasks from others", async () => {
    const alice = await mcpOverHttp(authed.url, ALICE);
    const bob = await mcpOverHttp(authed.url, BOB);
    try {
      const { task } = await alice.request(
        {
          method: 'tools/call',
          params: { name: 'execute', arguments: { code: 'async () => { await sleep(600000); }' }, task: {} },
        },
        CreateTaskResultSchema,
      );
      await expect(bob.experimental.tasks.getTask(task.taskId)).rejects.toThrow(/not found/i);
      await expect(bob.experimental.tasks.cancelTask(task.taskId)).rejects.toThrow(/not found/i);
      expect((await bob.experimental.tasks.listTasks()).tasks.map((t) => t.taskId)).not.toContain(task.taskId);
      expect(await alice.experimental.tasks.cancelTask(task.taskId)).toMatchObject({ status: 'cancelled' });
      expect(await stack.jobs.status(task.taskId)).toMatchObject({ status: 'cancelled' });
    } finally {
      await alice.close();
      await bob.close();
    }
  });
});
