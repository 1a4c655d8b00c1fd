/**
 * The HTTP transport as an attacker meets it: bearer tokens name principals, each principal sees only
 * its own jobs (another's job is "not found", word for word), foreign Host and Origin headers are
 * refused, oversized and malformed requests get JSON-RPC errors, and the server will not listen beyond
 * loopback without tokens. Real worker, real Temporal, real HTTP.
 */
import { spawn } from 'node:child_process';
import { request } from 'node:http';
import type { Client as McpClient } from '@modelcontextprotocol/sdk/client/index.js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { inject } from 'vitest';
import { OPERATOR } from '../../core/principal.ts';
import { ATTEMPT, OWNER } from '../../core/search-attributes.ts';
import { AuthConfigError, authenticate, isLoopbackHost, loadTokens } from '../../server/auth.ts';
import { InsecureBindError, startMcpHttpServer, type McpHttpServer } from '../../server/http.ts';
import { OWNER_MEMO_KEY } from '../../jobs/service.ts';
import { SpecSearch } from '../../sandbox/search.ts';
import {
  CLI,
  eventually,
  mcpOverHttp,
  startInProcessStack,
  testConfig,
  type InProcessStack,
  resultBudget,
} from '../harness.ts';

const ALICE = 'alice-token-0123456789abcdef';
const BOB = 'bob-token-0123456789abcdefgh';
const JSON_HEADERS = { 'content-type': 'application/json', accept: 'application/json, text/event-stream' };

let stack: InProcessStack;
let http: McpHttpServer;
let alice: McpClient;
let bob: McpClient;

beforeAll(async () => {
  // Runs continue as new after 200 events, so ownership is seen to survive it. Inputs up to 1 MiB
  // make the largest request the server reads about 2.6 MiB.
  stack = await startInProcessStack(
    testConfig({
      maxEventsPerRun: 200,
      http: { tokens: { alice: { tokenEnv: 'TEST_ALICE_TOKEN' } } },
      limits: { maxInputBytes: 1024 * 1024 },
    }),
  );
  // One principal from the config file's env variable, one from DURABLE_CODEMODE_HTTP_TOKENS.
  const tokens = loadTokens(stack.config.http, { TEST_ALICE_TOKEN: ALICE, DURABLE_CODEMODE_HTTP_TOKENS: `bob:${BOB}` });
  const deps = {
    jobs: stack.jobs,
    budget: resultBudget(stack.config),
    search: await SpecSearch.create([]),
    providers: [],
    defaultWaitSeconds: 20,
  };
  http = await startMcpHttpServer(deps, { host: '127.0.0.1', port: 0, tokens });
  alice = await mcpOverHttp(http.url, ALICE);
  bob = await mcpOverHttp(http.url, BOB);
});

afterAll(async () => {
  await alice?.close();
  await bob?.close();
  await http?.close();
  await stack?.close();
});

type ToolAnswer = { isError: boolean; text: string; structured: Record<string, unknown> | undefined };

async function call(client: McpClient, name: string, args: Record<string, unknown>): Promise<ToolAnswer> {
  const r = await client.callTool({ name, arguments: args });
  return {
    isError: Boolean(r.isError),
    text: (r.content as Array<{ text: string }>)[0].text,
    structured: r.structuredContent as Record<string, unknown> | undefined,
  };
}

/** A raw POST with node:http (fetch cannot set Host), answering status, headers and parsed body. */
function post(
  headers: Record<string, string>,
  body: string | Buffer,
): Promise<{ status: number; headers: Record<string, unknown>; body: unknown }> {
  return new Promise((resolve, reject) => {
    const req = request(http.url, { method: 'POST', headers: { ...JSON_HEADERS, ...headers } }, (res) => {
      let text = '';
      res.on('data', (d) => (text += d));
      res.on('end', () =>
        resolve({ status: res.statusCode!, headers: res.headers, body: text ? JSON.parse(text) : undefined }),
      );
    });
    req.on('error', reject);
    req.end(body);
  });
}

const toolsList = JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'tools/list' });

describe('bearer tokens', () => {
  it('refuses a request without a valid token with 401 and a JSON-RPC error', async () => {
    for (const authorization of [
      undefined,
      'Bearer wrong-token-0123456789',
      `Basic ${Buffer.from(`alice:${ALICE}`).toString('base64')}`,
      `Bearer ${ALICE.slice(0, -1)}`,
      `Bearer ${ALICE}x`,
    ]) {
      const r = await post(authorization ? { authorization } : {}, toolsList);
      expect(r.status, authorization).toBe(401);
      expect(r.headers['www-authenticate']).toMatch(/^Bearer/);
      expect(r.body).toMatchObject({
        jsonrpc: '2.0',
        id: null,
        error: { code: -32001, message: expect.stringMatching(/^Unauthorized/) },
      });
    }
    expect((await post({ authorization: `Bearer ${ALICE}` }, toolsList)).status).toBe(200);
    expect((await post({ authorization: `bearer ${BOB}` }, toolsList)).status).toBe(200);
  });

  it('matches tokens to principals and nothing else', () => {
    const table = loadTokens(
      { host: '127.0.0.1', port: 0, tokens: {}, allowedOrigins: [] },
      { DURABLE_CODEMODE_HTTP_TOKENS: `alice:${ALICE}, bob:${BOB}` },
    );
    expect(authenticate(`Bearer ${ALICE}`, table)).toEqual({ name: 'alice', seesAll: false });
    expect(authenticate(`Bearer ${BOB}`, table)).toEqual({ name: 'bob', seesAll: false });
    for (const header of [
      undefined,
      '',
      'Bearer',
      `Bearer ${ALICE} ${BOB}`,
      `Token ${ALICE}`,
      `Bearer ${ALICE.toUpperCase()}`,
    ])
      expect(authenticate(header, table)).toBeUndefined();
  });

  it('rejects token settings that would be unsafe or ambiguous, naming where they came from', () => {
    const http = { host: '127.0.0.1', port: 0, tokens: {}, allowedOrigins: [] };
    const env = (v: string) => ({ DURABLE_CODEMODE_HTTP_TOKENS: v });
    expect(() => loadTokens(http, env('alice'))).toThrow(
      /DURABLE_CODEMODE_HTTP_TOKENS: "alice\.\.\." is not principal:token/,
    );
    expect(() => loadTokens(http, env('alice:short'))).toThrow(/the token of "alice" is shorter than 16 characters/);
    expect(() => loadTokens(http, env(`operator:${ALICE}`))).toThrow(/"operator" cannot name a principal/);
    expect(() => loadTokens(http, env(`alice:${ALICE},bob:${ALICE}`))).toThrow(/"bob" and "alice" have the same token/);
    expect(() => loadTokens({ ...http, tokens: { carol: { tokenEnv: 'NOT_SET_ANYWHERE' } } }, {})).toThrow(
      AuthConfigError,
    );
    expect(() => loadTokens({ ...http, tokens: { carol: { tokenEnv: 'NOT_SET_ANYWHERE' } } }, {})).toThrow(
      /http\.tokens\.carol: the environment variable NOT_SET_ANYWHERE is not set/,
    );
  });
});

describe('tenant scoping', () => {
  it("answers another principal's job exactly like a job that does not exist, for status, cancel, approvals and resume", async () => {
    const started = await call(alice, 'execute', {
      code: 'async () => { await sleep(600000); return 1; }',
      wait_seconds: 0,
    });
    const jobId = started.structured!.job_id as string;
    expect(started.structured).toMatchObject({ status: 'running' });
    expect((await call(alice, 'job', { job_id: jobId })).structured).toMatchObject({
      job_id: jobId,
      status: 'running',
    });

    const missing = 'job-00000000-0000-0000-0000-000000000000';
    const notFound = async (tool: string, extra: Record<string, unknown> = {}) => {
      const theirs = await call(bob, tool, { job_id: jobId, ...extra });
      const nobody = await call(bob, tool, { job_id: missing, ...extra });
      expect(theirs.isError).toBe(true);
      expect(theirs.text.replace(jobId, 'ID')).toBe(nobody.text.replace(missing, 'ID'));
      expect(theirs.text).toMatch(/^No job "job-/);
    };
    await notFound('job');
    await notFound('job', { wait_seconds: 1 });
    await notFound('job', { action: 'cancel' });
    await notFound('job', { action: 'approve' });
    await notFound('job', { action: 'deny', note: 'no' });
    expect((await call(alice, 'job', { job_id: jobId })).structured?.status).toBe('running'); // bob's cancel did nothing

    // The owner cancels; the stranger still cannot resume it, the owner can, and ownership carries over.
    expect((await call(alice, 'job', { job_id: jobId, action: 'cancel' })).structured?.status).toBe('cancelled');
    await notFound('job_resume', { code: 'async () => 2' });
    const resumed = await call(alice, 'job_resume', { job_id: jobId, code: 'async () => 2', wait_seconds: 30 });
    expect(resumed.structured).toMatchObject({ status: 'completed', result: 2, attempt: 2 });
    await notFound('job');

    // The operator (stdio, CLI) sees every job, and the owner is on the workflow as a memo and a search attribute.
    expect(await stack.jobs.status(jobId)).toMatchObject({ status: 'completed', result: 2 });
    const description = await stack.client.workflow.getHandle(jobId).describe();
    expect(description.memo?.[OWNER_MEMO_KEY]).toBe('alice');
    expect(description.typedSearchAttributes.get(OWNER)).toBe('alice');
    expect(description.typedSearchAttributes.get(ATTEMPT)).toBe(2);
    // The list reads Temporal's visibility store, which lags the run's completion (on a cluster, by a poll or more).
    const rows = await eventually(
      async () => {
        const listed = (await stack.jobs.list({ limit: 100 })).filter((j) => j.job_id === jobId);
        return listed.length === 0 || listed[0].status === 'running' ? undefined : listed;
      },
      10_000,
      "the resumed job's completion in the job list",
    );
    expect(rows).toMatchObject([{ owner: 'alice', status: 'completed', attempt: 2 }]);
    expect((await stack.jobs.list({ limit: 100, owner: 'bob' })).map((j) => j.job_id)).not.toContain(jobId);
    expect(
      (await stack.jobs.as({ name: 'bob', seesAll: false }).list({ limit: 100 })).map((j) => j.job_id),
    ).not.toContain(jobId);
  });

  it('keeps the owner across continue-as-new', async () => {
    const carol = stack.jobs.as({ name: 'carol', seesAll: false });
    const view = await carol.execute({
      code: 'async () => { for (let i = 0; i < 60; i++) await checkpoint({ i }); return "done"; }',
      waitSeconds: 60,
    });
    expect(view).toMatchObject({ status: 'completed', result: 'done' });
    expect(view.runs).toBeGreaterThan(1);
    await expect(stack.jobs.as({ name: 'dave', seesAll: false }).status(view.job_id)).rejects.toThrow(/^No job/);
    expect(await carol.status(view.job_id)).toMatchObject({ status: 'completed', result: 'done' });
  });
});

describe('requests that are not what they should be', () => {
  const auth = { authorization: `Bearer ${ALICE}` };

  it('refuses foreign Host headers (DNS rebinding) and foreign Origin headers', async () => {
    const own = new URL(http.url).host;
    expect((await post({ ...auth, host: 'evil.example' }, toolsList)).status).toBe(403);
    expect((await post({ ...auth, host: `evil.example:${new URL(http.url).port}` }, toolsList)).status).toBe(403);
    const foreign = await post({ ...auth, origin: 'https://evil.example' }, toolsList);
    expect(foreign.status).toBe(403);
    expect(foreign.body).toMatchObject({
      error: { code: -32000, message: expect.stringMatching(/^Origin https:\/\/evil\.example is not allowed/) },
    });
    expect((await post({ ...auth, origin: 'null' }, toolsList)).status).toBe(403);
    expect((await post({ ...auth, origin: `http://${own}` }, toolsList)).status).toBe(200);
  });

  it('answers an oversized body with 413 and a JSON-RPC error', async () => {
    const big = JSON.stringify({
      jsonrpc: '2.0',
      id: 1,
      method: 'tools/call',
      params: { name: 'search', arguments: { code: 'x'.repeat(5 * 1024 * 1024) } },
    });
    const r = await post(auth, big);
    expect(r.status).toBe(413);
    expect(r.body).toMatchObject({
      jsonrpc: '2.0',
      error: {
        code: -32000,
        message: expect.stringMatching(/^The request is larger than .* so its input is over the limit/),
        data: { name: 'InputTooLargeError' },
      },
    });
  });

  it('answers malformed JSON-RPC with JSON-RPC errors', async () => {
    expect(await post(auth, '{not json')).toMatchObject({ status: 400, body: { error: { code: -32700 } } });
    expect(await post(auth, JSON.stringify({ hello: 'world' }))).toMatchObject({
      status: 400,
      body: { error: { code: -32700 } },
    });
    expect(await post(auth, JSON.stringify({ jsonrpc: '2.0', id: 7, method: 'no/such/method' }))).toMatchObject({
      status: 200,
      body: { jsonrpc: '2.0', id: 7, error: { code: -32601 } },
    });
    const wrongArgs = await post(
      auth,
      JSON.stringify({
        jsonrpc: '2.0',
        id: 8,
        method: 'tools/call',
        params: { name: 'job', arguments: { job_id: 42 } },
      }),
    );
    expect(wrongArgs.status).toBe(200);
    expect(JSON.stringify(wrongArgs.body)).toMatch(/job_id/);
    expect((await post({ ...auth, 'content-type': 'text/plain' }, toolsList)).status).toBe(415);
  });
});

describe('binding', () => {
  it('will not listen beyond loopback without tokens', async () => {
    const deps = {
      jobs: stack.jobs,
      budget: resultBudget(stack.config),
      search: await SpecSearch.create([]),
      providers: [],
      defaultWaitSeconds: 20,
    };
    for (const host of ['0.0.0.0', '::', '192.0.2.1']) {
      await expect(startMcpHttpServer(deps, { host, port: 0 })).rejects.toThrow(InsecureBindError);
    }
    expect(['127.0.0.1', '127.9.9.9', 'localhost', '::1', '[::1]'].every(isLoopbackHost)).toBe(true);
    expect(['0.0.0.0', '::', '10.0.0.1', 'example.com', '127.0.0.1.nip.io'].some(isLoopbackHost)).toBe(false);
    const open = await startMcpHttpServer(deps, { host: '127.0.0.1', port: 0 });
    expect(open.authenticated).toBe(false);
    await open.close();
    expect(OPERATOR.seesAll).toBe(true);
  });

  it('serve --http refuses a public host without tokens, and warns on loopback without them', async () => {
    const env = { ...process.env, TEMPORAL_ADDRESS: inject('temporalAddress'), DURABLE_CODEMODE_HTTP_TOKENS: '' };
    const refused = await runCli(['serve', '--http', '--host', '0.0.0.0', '--port', '0'], env, /./, 'exit');
    expect(refused.code).toBe(1);
    expect(refused.output).toMatch(
      /Refusing to serve MCP on 0\.0\.0\.0 without authentication.*DURABLE_CODEMODE_HTTP_TOKENS/s,
    );
    const warned = await runCli(['serve', '--http', '--port', '0'], env, /MCP server at/, 'kill');
    expect(warned.output).toMatch(/WARNING: the MCP HTTP server has no authentication: it listens on loopback only/);
    const quiet = await runCli(
      ['serve', '--http', '--port', '0'],
      { ...env, DURABLE_CODEMODE_HTTP_TOKENS: `alice:${ALICE}` },
      /MCP server at/,
      'kill',
    );
    expect(quiet.output).not.toMatch(/WARNING/);
  });
});

/** Runs the CLI until its output matches `until` (then kills it) or it exits. */
function runCli(
  args: string[],
  env: NodeJS.ProcessEnv,
  until: RegExp,
  then: 'kill' | 'exit',
): Promise<{ code: number | null; output: string }> {
  const child = spawn(process.execPath, ['--no-node-snapshot', CLI, ...args], {
    env,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let output = '';
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`CLI did not print ${until} within 60 s:\n${output}`));
    }, 60_000);
    const onData = (d: Buffer) => {
      output += d;
      if (then === 'kill' && until.test(output)) child.kill('SIGKILL');
    };
    child.stdout.on('data', onData);
    child.stderr.on('data', onData);
    child.once('exit', (code) => {
      clearTimeout(timer);
      resolve({ code, output });
    });
  });
}
