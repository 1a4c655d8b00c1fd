/**
 * Fuzzing the MCP HTTP endpoint: a fixed number of malformed, mistyped, oversized and hostile
 * requests from a seeded generator (so a failure replays exactly). Every request must get an HTTP
 * answer (an error as JSON-RPC), and the server must still serve a valid tools/list at the end.
 */
import { request } from 'node:http';
import type { Client } from '@temporalio/client';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { maxRequestBytes } from '../../jobs/input-limits.ts';
import { loadTokens } from '../../server/auth.ts';
import { startMcpHttpServer, type McpHttpServer } from '../../server/http.ts';
import { JobService } from '../../jobs/service.ts';
import { SpecSearch } from '../../sandbox/search.ts';
import { connectTestClient, testConfig, resultBudget } from '../harness.ts';

const ITERATIONS = 300;
const MAX_REQUEST_BYTES = maxRequestBytes({ maxInputBytes: 2 * 1024 * 1024, maxScriptBytes: 256 * 1024 });
const SEED = 0x5eed;
const TOKEN = 'fuzz-token-0123456789abcdef';

let http: McpHttpServer;
let client: Client;

beforeAll(async () => {
  // No worker polls this task queue: the fuzzer never sends a script that parses to execute. Inputs
  // up to 2 MiB make the largest request the server reads MAX_REQUEST_BYTES.
  const config = testConfig({ defaultWaitSeconds: 0, limits: { maxInputBytes: 2 * 1024 * 1024 } });
  client = await connectTestClient(config);
  const deps = {
    jobs: new JobService(client, config),
    budget: resultBudget(config),
    search: await SpecSearch.create([]),
    providers: [],
    defaultWaitSeconds: 0,
  };
  http = await startMcpHttpServer(deps, {
    host: '127.0.0.1',
    port: 0,
    tokens: loadTokens(config.http, { DURABLE_CODEMODE_HTTP_TOKENS: `fuzzer:${TOKEN}` }),
  });
});

afterAll(async () => {
  await http?.close();
  await client?.connection.close();
});

/** mulberry32: small, seedable, the same sequence every run. */
function prng(seed: number) {
  let s = seed >>> 0;
  const next = () => {
    s = (s + 0x6d2b79f5) >>> 0;
    let t = s;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
  const int = (n: number) => Math.floor(next() * n);
  const pick = <T>(xs: T[]): T => xs[int(xs.length)];
  const bytes = (n: number) => Buffer.from(Array.from({ length: n }, () => int(256)));
  return { next, int, pick, bytes };
}

const HEADERS = {
  'content-type': 'application/json',
  accept: 'application/json, text/event-stream',
  authorization: `Bearer ${TOKEN}`,
};

type Case = { what: string; headers: Record<string, string>; body: Buffer | string };

function generate(r: ReturnType<typeof prng>, i: number): Case {
  const rpc = (method: unknown, params?: unknown, id: unknown = r.int(1e6)) =>
    JSON.stringify({ jsonrpc: '2.0', id, method, ...(params === undefined ? {} : { params }) });
  const weird = () =>
    r.pick<unknown>([
      null,
      true,
      -1,
      1e308,
      '',
      'x'.repeat(r.int(3000)),
      [],
      {},
      [[[]]],
      { __proto__: { admin: true } },
      '\u0000\ud800',
      r.bytes(20).toString('latin1'),
    ]);
  const notCode = () => `)${r.bytes(r.int(200)).toString('latin1')}`; // never parses, so no job starts
  const tool = () =>
    r.pick([
      { name: 'search', arguments: { code: r.pick([notCode(), weird()]) } },
      {
        name: 'execute',
        arguments: r.pick([
          { code: notCode() },
          { code: weird() },
          { code: notCode(), wait_seconds: weird() },
          { input: weird() },
          weird(),
        ]),
      },
      {
        name: 'job',
        arguments: {
          job_id: r.pick([`job-${r.int(1e9)}`, '../../etc/passwd', '', "' OR 1=1 --", weird()]),
          wait_seconds: r.pick([0, -5, 61, weird()]),
        },
      },
      { name: 'job', arguments: { job_id: r.pick([`job-${r.int(1e9)}`, weird()]), action: 'cancel' } },
      { name: 'job_resume', arguments: { job_id: `job-${r.int(1e9)}`, code: r.pick([notCode(), weird()]) } },
      { name: r.pick(['nope', '__proto__', 'constructor', '', weird()]), arguments: weird() },
    ]);
  // Every 30th request is huge: well over the request limit, just over it, or just under it.
  if (i % 30 === 29) {
    const size = r.pick([MAX_REQUEST_BYTES + 1024 * 1024, MAX_REQUEST_BYTES + 1, MAX_REQUEST_BYTES - 200]);
    return {
      what: `huge ${size}`,
      headers: HEADERS,
      body: rpc('tools/call', { name: 'search', arguments: { code: ')' + 'x'.repeat(size - 100) } }),
    };
  }
  switch (r.int(9)) {
    case 0:
      return { what: 'random bytes', headers: HEADERS, body: r.bytes(r.int(2000)) };
    case 1: {
      const valid = rpc(r.pick(['tools/list', 'tools/call', 'initialize']), {
        name: 'search',
        arguments: { code: 'async () => 1' },
      });
      return { what: 'truncated JSON', headers: HEADERS, body: valid.slice(0, r.int(valid.length)) };
    }
    case 2:
      return {
        what: 'wrong types',
        headers: HEADERS,
        body: JSON.stringify({
          jsonrpc: r.pick(['2.0', 2, '1.0', null]),
          id: weird(),
          method: r.pick([weird(), 'tools/call']),
          params: weird(),
        }),
      };
    case 3:
      return {
        what: 'unknown method',
        headers: HEADERS,
        body: rpc(
          r.pick([
            'tools/destroy',
            'resources/list',
            'prompts/get',
            'sampling/createMessage',
            '$/cancel',
            'x'.repeat(1000),
          ]),
          weird(),
        ),
      };
    case 4: {
      const batch = Array.from({ length: r.pick([0, 1, 3, 20, 200]) }, () =>
        JSON.parse(
          r.pick([rpc('tools/list'), rpc('tools/call', tool()), rpc('ping'), JSON.stringify(weird() ?? null)]),
        ),
      );
      return { what: `batch of ${batch.length}`, headers: HEADERS, body: JSON.stringify(batch) };
    }
    case 5:
      return { what: 'tool call', headers: HEADERS, body: rpc('tools/call', tool()) };
    case 6:
      return {
        what: 'notification',
        headers: HEADERS,
        body: JSON.stringify({
          jsonrpc: '2.0',
          method: r.pick(['notifications/initialized', 'notifications/cancelled', 'x']),
          params: weird(),
        }),
      };
    case 7: {
      const headers: Record<string, string> = { ...HEADERS };
      const mutation = r.pick([
        'no auth',
        'bad auth',
        'bad content-type',
        'no accept',
        'foreign origin',
        'foreign host',
        'basic auth',
      ]);
      if (mutation === 'no auth') delete headers.authorization;
      if (mutation === 'bad auth') headers.authorization = `Bearer ${r.bytes(16).toString('hex')}`;
      if (mutation === 'basic auth')
        headers.authorization = `Basic ${Buffer.from(`fuzzer:${TOKEN}`).toString('base64')}`;
      if (mutation === 'bad content-type')
        headers['content-type'] = r.pick([
          'text/plain',
          'application/x-www-form-urlencoded',
          'multipart/form-data; boundary=x',
          'application/jsonx',
        ]);
      if (mutation === 'no accept') headers.accept = r.pick(['text/html', '*/*', 'application/json']);
      if (mutation === 'foreign origin')
        headers.origin = r.pick(['https://evil.example', 'null', 'http://localhost:1']);
      if (mutation === 'foreign host') headers.host = r.pick(['evil.example', 'localhost:1', '127.0.0.1.nip.io:80']);
      return { what: mutation, headers, body: rpc('tools/list') };
    }
    default:
      return {
        what: 'deep nesting',
        headers: HEADERS,
        body: rpc('tools/call', {
          name: 'search',
          arguments: { code: JSON.parse('['.repeat(2000) + ']'.repeat(2000)) },
        }),
      };
  }
}

/** Sends raw bytes; resolves with the answer even if the server stops reading an oversized upload. */
function send(c: Case): Promise<{ status: number; text: string }> {
  return new Promise((resolve, reject) => {
    const req = request(http.url, { method: 'POST', headers: c.headers }, (res) => {
      let text = '';
      res.setEncoding('utf8');
      res.on('data', (d) => (text += d));
      res.on('end', () => resolve({ status: res.statusCode!, text }));
      res.on('error', reject);
    });
    // The server may answer 413 and close before the whole upload is written; the answer still counts.
    req.on('error', (e) => setTimeout(() => reject(e), 1_000));
    req.end(c.body);
  });
}

it(`answers ${ITERATIONS} malformed and oversized requests with HTTP errors, and keeps serving`, async () => {
  const r = prng(SEED);
  const statuses: Record<string, number> = {};
  for (let i = 0; i < ITERATIONS; i++) {
    const c = generate(r, i);
    const { status, text } = await send(c).catch((e: Error) =>
      expect.fail(`request ${i} (${c.what}) got no HTTP answer: ${e.message}`),
    );
    statuses[status] = (statuses[status] ?? 0) + 1;
    const where = `request ${i} (${c.what}) → ${status}: ${text.slice(0, 300)}`;
    expect([200, 202, 400, 401, 403, 406, 413, 415], where).toContain(status);
    if (status === 202) continue; // notifications only: nothing to answer
    const body = JSON.parse(text) as
      { jsonrpc: string; error?: { code: number; message: string } } | Array<{ jsonrpc: string }>;
    if (status >= 400)
      expect((body as { jsonrpc: string; error: { code: number } }).error.code, where).toEqual(expect.any(Number));
    for (const message of Array.isArray(body) ? body : [body]) expect(message.jsonrpc, where).toBe('2.0');
  }
  console.log(`fuzz: ${ITERATIONS} requests, answers by HTTP status: ${JSON.stringify(statuses)}`);
  expect(statuses[413]).toBeGreaterThan(0);
  expect(statuses[401]).toBeGreaterThan(0);

  const listed = await send({
    what: 'valid',
    headers: HEADERS,
    body: JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'tools/list' }),
  });
  expect(listed.status).toBe(200);
  expect(
    (JSON.parse(listed.text) as { result: { tools: Array<{ name: string }> } }).result.tools.map((t) => t.name),
  ).toContain('execute');
});
