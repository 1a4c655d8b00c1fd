/**
 * Humans in the loop, end to end against a real Temporal server, real workers (one killed with
 * SIGKILL) and a real HTTP API that records every request: `approve()` answered through MCP (HTTP
 * and stdio), the job service, Temporal's own Update and Signal sent with the Temporal CLI; a denial
 * caught by the script; a timeout; three approvals pending at once; the approval policy holding a
 * write before it is made; who may answer; MCP tasks showing `input_required`. Measured: the time
 * from an answer to the job's next API call, and the sandboxes a worker holds while a job waits.
 */
import { execFile } from 'node:child_process';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { promisify } from 'node:util';
import type { Client as McpClient } from '@modelcontextprotocol/sdk/client/index.js';
import { CreateTaskResultSchema } from '@modelcontextprotocol/sdk/experimental/tasks/types.js';
import { CallToolResultSchema } from '@modelcontextprotocol/sdk/types.js';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import type { Config } from '../../cli/config.ts';
import { PHASE } from '../../core/search-attributes.ts';
import { ApprovalNotAllowedError, JobNotFoundError, JobService, type JobView } from '../../jobs/service.ts';
import { SpecSearch } from '../../sandbox/search.ts';
import { loadTokens } from '../../server/auth.ts';
import { startMcpHttpServer, type McpHttpServer } from '../../server/http.ts';
import {
  CLI,
  connectTestClient,
  eventually,
  mcpOverHttp,
  mcpOverStdio,
  resultBudget,
  spawnWorker,
  startInProcessStack,
  testConfig,
  writeConfigFile,
  writeOpenApiSpec,
  type InProcessStack,
} from '../harness.ts';

const ALICE = 'alice-token-0123456789abcdef';
const BOB = 'bob-token-0123456789abcdefgh';
const run = promisify(execFile);

/** Every request the test API received, with the time it arrived. */
const received: Array<{ method: string; path: string; at: number }> = [];
let api: Server;
let stack: InProcessStack;
let http: McpHttpServer;
let alice: McpClient;
let bob: McpClient;
let stdio: McpClient;

function configWith(extra: Record<string, unknown> = {}): Config {
  const { port } = api.address() as AddressInfo;
  return testConfig({
    providers: {
      api: {
        openapi: writeOpenApiSpec(['POST /writes', 'POST /gated', 'DELETE /gated/{id}']),
        baseUrl: `http://127.0.0.1:${port}`,
        retry: { maximumAttempts: 2, initialIntervalMs: 100 },
        approval: [
          { match: ['POST /gated'], after: 1, ask: 'once' },
          { match: ['DELETE /gated/*'], ask: 'each' },
        ],
      },
    },
    ...extra,
  });
}

beforeAll(async () => {
  api = createServer((req, res) => {
    received.push({ method: req.method!, path: req.url!, at: Date.now() });
    req.resume();
    req.on('end', () => res.writeHead(200, { 'content-type': 'application/json' }).end('{"ok":true}'));
  });
  await new Promise<void>((resolve) => api.listen(0, '127.0.0.1', resolve));
  stack = await startInProcessStack(configWith());
  const tokens = loadTokens(stack.config.http, { DURABLE_CODEMODE_HTTP_TOKENS: `alice:${ALICE},bob:${BOB}` });
  const deps = {
    jobs: stack.jobs,
    budget: resultBudget(stack.config),
    search: await SpecSearch.create([]),
    providers: ['api'],
    defaultWaitSeconds: 20,
  };
  http = await startMcpHttpServer(deps, { host: '127.0.0.1', port: 0, tokens });
  alice = await mcpOverHttp(http.url, ALICE);
  bob = await mcpOverHttp(http.url, BOB);
  stdio = await mcpOverStdio(writeConfigFile(stack.config));
});

afterAll(async () => {
  for (const client of [alice, bob, stdio]) await client?.close();
  await http?.close();
  await stack?.close();
  await new Promise((resolve) => api?.close(resolve));
});

type Structured = Record<string, unknown> & Partial<JobView>;

async function call(client: McpClient, name: string, args: Record<string, unknown>): Promise<Structured> {
  const result = await client.callTool({ name, arguments: args });
  return (result.structuredContent ?? { text: (result.content as Array<{ text: string }>)[0].text }) as Structured;
}

/** The job's status once it waits for `count` approvals. */
function waitingFor(jobs: JobService, jobId: string, count = 1): Promise<JobView> {
  return eventually(
    async () => {
      const view = await jobs.status(jobId);
      return view.status === 'waiting_for_approval' && view.approvals?.pending.length === count ? view : undefined;
    },
    60_000,
    `job ${jobId} waiting for ${count} approval(s)`,
  );
}

const requestsTo = (path: string, method = 'POST') =>
  received.filter((r) => r.method === method && r.path.startsWith(path)).length;

describe('approve() in a script', () => {
  it('waits holding no sandbox, shows the question (also as an MCP task), and goes on when the owner approves through MCP', async () => {
    const code = `async () => {
      const answer = await approve('Import 3 leads into the CRM?', { count: 3, sample: ['a@x.io'] });
      await api.request({ method: 'POST', path: '/writes', body: { n: 3 } });
      return answer;
    }`;
    const { task } = await alice.request(
      { method: 'tools/call', params: { name: 'execute', arguments: { code }, task: {} } },
      CreateTaskResultSchema,
    );
    const jobId = task.taskId;
    const waiting = await waitingFor(stack.jobs, jobId);
    expect(waiting.approvals!.pending[0]).toMatchObject({
      id: 'a1',
      question: 'Import 3 leads into the CRM?',
      details: { count: 3, sample: ['a@x.io'] },
      since: expect.any(String),
      expires: expect.any(String),
    });
    // The job holds no sandbox while it waits: the worker has let go of its session.
    await eventually(() => (stack.worker.sessions.size === 0 ? true : undefined), 10_000, 'no live session');
    console.log(`waiting for approval: ${stack.worker.sessions.size} sandboxes held by the worker`);
    expect(await alice.experimental.tasks.getTask(jobId)).toMatchObject({
      status: 'input_required',
      statusMessage: expect.stringContaining('Import 3 leads into the CRM?'),
    });
    expect(await call(alice, 'job', { job_id: jobId })).toMatchObject({ status: 'waiting_for_approval' });
    // The Temporal UI's current details say the same.
    const metadata = await stack.client.workflow
      .getHandle(jobId)
      .query<{ currentDetails: string }>('__temporal_workflow_metadata');
    expect(metadata.currentDetails).toContain('Import 3 leads into the CRM?');

    // Someone else gets exactly "not found".
    const theirs = await bob.callTool({ name: 'job', arguments: { job_id: jobId, action: 'approve' } });
    expect(theirs).toMatchObject({
      isError: true,
      structuredContent: { error: { name: 'JobNotFoundError', message: expect.stringMatching(`^No job "${jobId}"`) } },
    });
    expect(requestsTo('/writes')).toBe(0);

    const before = received.length;
    const answeredAt = Date.now();
    const answered = await call(alice, 'job', { job_id: jobId, action: 'approve', note: 'go ahead' });
    expect(answered.approvals?.answered[0]).toMatchObject({
      id: 'a1',
      approved: true,
      by: 'alice',
      via: 'mcp',
      note: 'go ahead',
    });
    const next = await eventually(() => received[before], 30_000, 'the next API call');
    console.log(`approval answer → next API call: ${next.at - answeredAt} ms`);

    const done = await alice.experimental.tasks.getTaskResult(jobId, CallToolResultSchema);
    expect(done.structuredContent).toMatchObject({
      status: 'completed',
      result: { approved: true, by: 'alice', note: 'go ahead' },
      approvals: { pending: [], answered: [{ id: 'a1', approved: true, by: 'alice', at: expect.any(String) }] },
    });
  });

  it('rejects with a catchable ApprovalDeniedError when denied (stdio)', async () => {
    const started = await call(stdio, 'execute', {
      code: `async () => {
        try { await approve('Delete every lead?'); return 'deleted'; }
        catch (e) { return { name: e.name, by: e.by, note: e.note, caught: e instanceof ApprovalDeniedError, message: e.message }; }
      }`,
      wait_seconds: 0,
    });
    await waitingFor(stack.jobs, started.job_id!);
    await call(stdio, 'job', { job_id: started.job_id, action: 'deny', note: 'not today' });
    const done = await stack.jobs.status(started.job_id!, 30);
    expect(done.result).toEqual({
      name: 'ApprovalDeniedError',
      by: 'operator',
      note: 'not today',
      caught: true,
      message: '"Delete every lead?" was denied by operator: not today',
    });
  });

  it('is denied when nobody answers in time', async () => {
    const view = await stack.jobs.execute({
      code: `async () => approve('Quick?', null, { timeoutMs: 1500 }).catch((e) => [e.name, e.by])`,
      waitSeconds: 30,
    });
    expect(view).toMatchObject({
      status: 'completed',
      result: ['ApprovalDeniedError', 'timeout'],
      approvals: { answered: [{ id: 'a1', approved: false, by: 'timeout', via: 'timeout' }] },
    });
  });

  it('waits for three approvals at once, answered one by one and all together', async () => {
    const jobId = await stack.jobs.startScript({
      code: `async () => {
        const asks = ['first', 'second', 'third'].map((q) => approve(q).then((a) => a.by, (e) => 'denied: ' + e.note));
        return Promise.all(asks);
      }`,
    });
    const view = await waitingFor(stack.jobs, jobId, 3);
    expect(view.approvals!.pending.map((p) => [p.id, p.question])).toEqual([
      ['a1', 'first'],
      ['a2', 'second'],
      ['a3', 'third'],
    ]);
    await stack.jobs.answer(jobId, { approved: false, id: 'a2', note: 'no', via: 'cli' });
    await expect(stack.jobs.answer(jobId, { approved: true, id: 'a2', via: 'cli' })).rejects.toThrow(
      /No pending approval "a2"; pending: a1, a3/,
    );
    await stack.jobs.answer(jobId, { approved: true, via: 'cli' });
    expect(await stack.jobs.status(jobId, 30)).toMatchObject({
      status: 'completed',
      result: ['operator', 'denied: no', 'operator'],
    });
    await expect(stack.jobs.answer(jobId, { approved: true, via: 'cli' })).rejects.toThrow(/has ended \(completed\)/);
  });

  it('is answered with the CLI: durable-codemode jobs approve JOB_ID --note', async () => {
    const jobId = await stack.jobs.startScript({ code: `async () => approve('From the shell?')` });
    await waitingFor(stack.jobs, jobId);
    const env = { ...process.env, TEMPORAL_ADDRESS: inject('temporalAddress') };
    const cli = (args: string[]) =>
      run(process.execPath, ['--no-node-snapshot', CLI, 'jobs', ...args, '--config', writeConfigFile(stack.config)], {
        env,
      });
    await expect(cli(['approve', jobId, '--id', 'a9'])).rejects.toMatchObject({
      stderr: expect.stringContaining('No pending approval "a9"; pending: a1.'),
    });
    const { stdout } = await cli(['approve', jobId, '--note', 'looks right', '--json']);
    expect(JSON.parse(stdout)).toMatchObject({ approvals: { answered: [{ id: 'a1', by: 'operator', via: 'cli' }] } });
    expect(await stack.jobs.status(jobId, 30)).toMatchObject({
      status: 'completed',
      result: { approved: true, by: 'operator', note: 'looks right' },
    });
  });

  it('says waiting_for_approval in DcmPhase while it waits, for jobs list --status, the Temporal list and tasks/list, and running once answered', async () => {
    const jobId = await stack.jobs.startScript({
      code: `async () => { await approve('Phase?'); await sleep(600_000); return 'slept'; }`,
    });
    await waitingFor(stack.jobs, jobId);
    const handle = stack.client.workflow.getHandle(jobId);
    const phase = async () => (await handle.describe()).typedSearchAttributes.get(PHASE);
    expect(await phase()).toBe('waiting_for_approval');

    // Visibility catches up with the upsert a moment later: the filters below see it then.
    const env = { ...process.env, TEMPORAL_ADDRESS: inject('temporalAddress') };
    const cliRows = async (status: string) => {
      const args = ['jobs', 'list', '--status', status, '--json', '--config', writeConfigFile(stack.config)];
      const { stdout } = await run(process.execPath, ['--no-node-snapshot', CLI, ...args], { env });
      return JSON.parse(stdout) as Array<{ job_id: string; status: string }>;
    };
    const listed = await eventually(
      async () => (await cliRows('waiting_for_approval')).find((r) => r.job_id === jobId),
      30_000,
      'jobs list --status waiting_for_approval showing the job',
    );
    expect(listed).toMatchObject({ status: 'waiting_for_approval' });
    const query = `DcmPhase = 'waiting_for_approval' AND WorkflowId = '${jobId}'`;
    const { stdout } = await run('temporal', [
      ...['workflow', 'list', '--query', query, '--output', 'json'],
      ...['--address', inject('temporalAddress')],
    ]);
    expect(stdout).toContain(jobId);
    const { jobs } = await stack.jobs.page();
    expect(jobs.find((j) => j.job_id === jobId)).toMatchObject({ status: 'waiting_for_approval' });

    await stack.jobs.answer(jobId, { approved: true, via: 'cli' });
    // The job sleeps now: running again, and listed so.
    await eventually(async () => ((await phase()) === 'running' ? true : undefined), 30_000, 'DcmPhase running');
    await eventually(
      async () => ((await cliRows('running')).some((r) => r.job_id === jobId) ? true : undefined),
      30_000,
      'jobs list --status running showing the job',
    );
    await stack.jobs.cancel(jobId);
    await eventually(async () => ((await phase()) === 'cancelled' ? true : undefined), 30_000, 'DcmPhase cancelled');
  });

  it("is answered by Temporal's own Update and Signal, as the Temporal UI or CLI send them", async () => {
    const jobId = await stack.jobs.startScript({
      code: `async () => [await approve('one?').then((a) => a.note), await approve('two?').catch((e) => e.name)]`,
    });
    const temporal = (args: string[]) =>
      run('temporal', [...args, '--workflow-id', jobId, '--address', inject('temporalAddress')]);
    await waitingFor(stack.jobs, jobId);
    await temporal([
      'workflow',
      'update',
      'execute',
      '--name',
      'answerApproval',
      '--input',
      '{"approved":true,"note":"via update"}',
    ]);
    await eventually(async () =>
      (await stack.jobs.status(jobId)).approvals?.pending[0]?.id === 'a2' ? true : undefined,
    );
    await temporal(['workflow', 'signal', '--name', 'answerApproval', '--input', '{"approved":false}']);
    expect(await stack.jobs.status(jobId, 30)).toMatchObject({
      status: 'completed',
      result: ['via update', 'ApprovalDeniedError'],
      approvals: {
        answered: [
          { id: 'a1', approved: true, by: 'operator', via: 'temporal' },
          { id: 'a2', approved: false, by: 'operator', via: 'temporal' },
        ],
      },
    });
  });
});

describe('the approval policy', () => {
  it('holds a write before it is made: the API sees nothing until approved, then the rest go through (ask once)', async () => {
    const jobId = await stack.jobs.startScript({
      code: `async () => { for (let i = 0; i < 3; i++) await api.request({ method: 'POST', path: '/gated', body: { i } }); return 'done'; }`,
    });
    const view = await waitingFor(stack.jobs, jobId);
    expect(view.approvals!.pending[0]).toMatchObject({
      question: expect.stringContaining('api: POST /gated'),
      call: { provider: 'api', label: 'api: POST /gated', request: { method: 'POST', path: '/gated', body: { i: 1 } } },
    });
    // The first call was within `after: 1`; the second waits, unsent.
    expect(requestsTo('/gated')).toBe(1);
    await stack.jobs.answer(jobId, { approved: true, via: 'cli' });
    expect(await stack.jobs.status(jobId, 30)).toMatchObject({ status: 'completed', result: 'done' });
    expect(requestsTo('/gated')).toBe(3);
  });

  it('turns a denied call into a catchable ApprovalDeniedError at the call, never sending it (ask each)', async () => {
    const before = requestsTo('/gated/', 'DELETE');
    const jobId = await stack.jobs.startScript({
      code: `async () => api.request({ method: 'DELETE', path: '/gated/7' }).catch((e) => e.message)`,
    });
    await waitingFor(stack.jobs, jobId);
    await stack.jobs.answer(jobId, { approved: false, note: 'keep it', via: 'cli' });
    expect(await stack.jobs.status(jobId, 30)).toMatchObject({
      result: 'api: DELETE /gated/7 was not made: its approval was denied by operator: keep it',
    });
    expect(requestsTo('/gated/', 'DELETE')).toBe(before);
  });

  it('never starts a held call ahead of its round: after an ungated write, a denied DELETE is never sent', async () => {
    const before = requestsTo('/gated/', 'DELETE');
    const writes = requestsTo('/writes');
    const jobId = await stack.jobs.startScript({
      code: `async () => {
        await api.request({ method: 'POST', path: '/writes', body: {} });
        return api.request({ method: 'DELETE', path: '/gated/8' }).catch((e) => e.name);
      }`,
    });
    await waitingFor(stack.jobs, jobId);
    expect(requestsTo('/writes')).toBe(writes + 1);
    expect(requestsTo('/gated/', 'DELETE')).toBe(before);
    await stack.jobs.answer(jobId, { approved: false, via: 'cli' });
    expect(await stack.jobs.status(jobId, 30)).toMatchObject({ result: 'ApprovalDeniedError' });
    expect(requestsTo('/gated/', 'DELETE')).toBe(before);
  });
});

describe('who answers', () => {
  it('with approvers in the config: they and the operator, not the owner; others get "not found"', async () => {
    const config = { ...stack.config, approvals: { approvers: ['carol'], timeoutSeconds: 3600 } };
    const jobs = new JobService(stack.client, config);
    const owner = jobs.as({ name: 'alice', seesAll: false });
    const jobId = await owner.startScript({ code: `async () => (await approve('Ship it?')).by` });
    await waitingFor(jobs, jobId);
    await expect(owner.answer(jobId, { approved: true, via: 'mcp' })).rejects.toThrow(ApprovalNotAllowedError);
    await expect(
      jobs.as({ name: 'bob', seesAll: false }).answer(jobId, { approved: true, via: 'mcp' }),
    ).rejects.toThrow(JobNotFoundError);
    const carol = jobs.as({ name: 'carol', seesAll: false });
    expect((await carol.status(jobId)).approvals?.pending[0].question).toBe('Ship it?');
    await carol.answer(jobId, { approved: true, via: 'mcp' });
    expect(await owner.status(jobId, 30)).toMatchObject({ status: 'completed', result: 'carol' });
  });
});

describe('a job waiting for approval on a worker that dies', () => {
  it('survives SIGKILL of its worker and goes on on another one once approved', async () => {
    const config = configWith();
    const configFile = writeConfigFile(config);
    const client = await connectTestClient(config);
    const jobs = new JobService(client, config);
    let worker = await spawnWorker(configFile);
    try {
      const jobId = await jobs.startScript({
        code: `async () => {
          await api.request({ method: 'POST', path: '/writes', body: { before: true } });
          const a = await approve('Continue after the first write?');
          await api.request({ method: 'POST', path: '/writes', body: { after: true } });
          return a.by;
        }`,
      });
      await waitingFor(jobs, jobId);
      const writes = requestsTo('/writes');
      await worker.kill('SIGKILL');
      worker = await spawnWorker(configFile);
      await jobs.answer(jobId, { approved: true, via: 'cli' });
      expect(await jobs.status(jobId, 40)).toMatchObject({ status: 'completed', result: 'operator' });
      // The write before the approval was not made again by the replay on the new worker.
      expect(requestsTo('/writes')).toBe(writes + 1);
    } finally {
      await worker.kill('SIGKILL');
      await client.connection.close();
    }
  });
});
