/**
 * Payload encryption: with DURABLE_CODEMODE_CODEC_KEY set, the raw workflow history (read without
 * the key) holds none of a job's input, script, logs or result, while the product, which has the
 * key, works as usual (including job_resume, which reads the job's input back). The codec endpoint
 * decodes for the operator's Temporal UI, with CORS for the UI's origin, and for no one else.
 */
import { randomBytes, randomUUID } from 'node:crypto';
import { Client, Connection } from '@temporalio/client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadTokens } from '../../server/auth.ts';
import { AesGcmCodec, CODEC_KEY_ENV, codecFromEnv } from '../../temporal/codec.ts';
import { startMcpHttpServer, type McpHttpServer } from '../../server/http.ts';
import { SpecSearch } from '../../sandbox/search.ts';
import { startInProcessStack, testConfig, texts, type InProcessStack, resultBudget } from '../harness.ts';

const UI = 'http://localhost:8233';
const INPUT_MARKER = `input-marker-${randomUUID()}`;
const SCRIPT_MARKER = `script-marker-${randomUUID()}`;

let stack: InProcessStack;
let codec: AesGcmCodec;
let http: McpHttpServer;
/** A client without the key: what Temporal itself, or anyone reading its database, sees. */
let raw: Client;

beforeAll(async () => {
  process.env[CODEC_KEY_ENV] = randomBytes(32).toString('base64');
  codec = codecFromEnv()!;
  stack = await startInProcessStack(testConfig({}));
  const deps = {
    jobs: stack.jobs,
    budget: resultBudget(stack.config),
    search: await SpecSearch.create([]),
    providers: [],
    defaultWaitSeconds: 20,
  };
  http = await startMcpHttpServer(deps, { host: '127.0.0.1', port: 0, allowedOrigins: [UI], codec });
  raw = new Client({
    connection: await Connection.connect({ address: stack.config.temporal.address }),
    namespace: stack.config.temporal.namespace,
  });
});

afterAll(async () => {
  await http?.close();
  await stack?.close();
  await raw?.connection.close();
  delete process.env[CODEC_KEY_ENV];
});

describe('payload encryption', () => {
  let jobId: string;

  it('keeps plaintext out of the history, while the product reads its jobs as usual', async () => {
    const code = `async () => { const tag = '${SCRIPT_MARKER}';
      console.log('logging', input.marker);
      await checkpoint({ seen: input.marker });
      throw new Error('stop here to resume');
    }`;
    const failed = await stack.jobs
      .as({ name: 'alice', seesAll: false })
      .execute({ code, input: { marker: INPUT_MARKER }, waitSeconds: 30 });
    jobId = failed.job_id;
    expect(failed).toMatchObject({
      status: 'failed',
      logs: [`logging ${INPUT_MARKER}`],
      error: { message: 'stop here to resume' },
    });
    const resumed = await stack.jobs.resume(
      jobId,
      code.replace("throw new Error('stop here to resume')", 'return { tag, marker: input.marker, resume }'),
      30,
    );
    expect(resumed).toMatchObject({
      status: 'completed',
      attempt: 2,
      result: { tag: SCRIPT_MARKER, marker: INPUT_MARKER, resume: { seen: INPUT_MARKER } },
    });

    const runs = [];
    for await (const info of stack.client.workflow.list({ query: `WorkflowId = '${jobId}'` })) runs.push(info.runId);
    expect(runs.length).toBe(2);
    for (const runId of runs) {
      const events = (await raw.workflow.getHandle(jobId, runId).fetchHistory()).events ?? [];
      // Search attributes are indexed, so Temporal keeps them in clear: the owner is one on purpose
      // (operators filter by it), the one place it may show. Everything else must be sealed.
      const started = events[0].workflowExecutionStartedEventAttributes!;
      expect(JSON.parse(Buffer.from(started.searchAttributes!.indexedFields!.DcmOwner.data!).toString())).toBe('alice');
      const history = texts(
        events.map((event) => ({
          ...event,
          workflowExecutionStartedEventAttributes: {
            ...event.workflowExecutionStartedEventAttributes,
            searchAttributes: null,
          },
          upsertWorkflowSearchAttributesEventAttributes: null,
        })),
      ).join('\n');
      expect(history).toContain('binary/encrypted');
      for (const marker of [INPUT_MARKER, SCRIPT_MARKER, 'stop here to resume', 'alice'])
        expect(history.includes(marker), `${marker} in run ${runId}`).toBe(false);
    }
    // Without the key, even the memo (the job's owner) is ciphertext.
    const { namespace } = stack.config.temporal;
    const described = await raw.workflowService.describeWorkflowExecution({
      namespace,
      execution: { workflowId: jobId },
    });
    expect(texts(described.workflowExecutionInfo?.memo).join('')).not.toContain('alice');
    await expect(raw.workflow.getHandle(jobId).describe()).rejects.toThrow(/Unknown encoding: binary\/encrypted/);
  });

  it('decodes through the codec endpoint for the operator, with CORS for the Temporal UI', async () => {
    const history = await raw.workflow.getHandle(jobId).fetchHistory();
    const input = history.events![0].workflowExecutionStartedEventAttributes!.input!.payloads!;
    const wire = {
      payloads: input.map((p) => ({
        metadata: Object.fromEntries(
          Object.entries(p.metadata ?? {}).map(([k, v]) => [k, Buffer.from(v).toString('base64')]),
        ),
        data: Buffer.from(p.data!).toString('base64'),
      })),
    };
    const url = http.url.replace(/\/mcp$/, '/codec');

    const preflight = await fetch(`${url}/decode`, {
      method: 'OPTIONS',
      headers: {
        origin: UI,
        'access-control-request-method': 'POST',
        'access-control-request-headers': 'content-type,x-namespace',
      },
    });
    expect(preflight.status).toBe(204);
    expect(preflight.headers.get('access-control-allow-origin')).toBe(UI);
    expect(preflight.headers.get('access-control-allow-headers')).toMatch(/x-namespace/);

    const decoded = await fetch(`${url}/decode`, {
      method: 'POST',
      headers: { origin: UI, 'content-type': 'application/json', 'x-namespace': 'default' },
      body: JSON.stringify(wire),
    });
    expect(decoded.status).toBe(200);
    expect(decoded.headers.get('access-control-allow-origin')).toBe(UI);
    const plain = (await decoded.json()) as { payloads: Array<{ data: string }> };
    expect(Buffer.from(plain.payloads[0].data, 'base64').toString()).toContain(INPUT_MARKER);

    const encoded = (await (
      await fetch(`${url}/encode`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify(plain),
      })
    ).json()) as typeof wire;
    expect(Buffer.from(encoded.payloads[0].metadata.encoding, 'base64').toString()).toBe('binary/encrypted');

    expect(
      (
        await fetch(`${url}/decode`, {
          method: 'POST',
          headers: { origin: 'https://evil.example', 'content-type': 'application/json' },
          body: JSON.stringify(wire),
        })
      ).status,
    ).toBe(403);
    expect((await fetch(`${url}/decode`, { method: 'POST', body: '{"nope": 1}' })).status).toBe(400);
  });

  it('refuses the codec endpoint to principals, and payloads sealed with another key', async () => {
    const TOKEN = 'codec-test-token-0123456789';
    const deps = {
      jobs: stack.jobs,
      budget: resultBudget(stack.config),
      search: await SpecSearch.create([]),
      providers: [],
      defaultWaitSeconds: 20,
    };
    const withTokens = await startMcpHttpServer(deps, {
      host: '127.0.0.1',
      port: 0,
      codec,
      tokens: loadTokens(stack.config.http, { DURABLE_CODEMODE_HTTP_TOKENS: `alice:${TOKEN}` }),
    });
    try {
      const url = withTokens.url.replace(/\/mcp$/, '/codec/decode');
      expect((await fetch(url, { method: 'POST', body: '{"payloads": []}' })).status).toBe(401);
      const denied = await fetch(url, {
        method: 'POST',
        headers: { authorization: `Bearer ${TOKEN}` },
        body: '{"payloads": []}',
      });
      expect(denied.status).toBe(403);
      expect(await denied.text()).toMatch(/for the operator only/);
    } finally {
      await withTokens.close();
    }
    const [sealed] = await codec.encode([
      { metadata: { encoding: Buffer.from('json/plain') }, data: Buffer.from('"x"') },
    ]);
    const other = new AesGcmCodec(randomBytes(32));
    await expect(other.decode([sealed])).rejects.toThrow(
      /encrypted with key sha256:[0-9a-f]{16}, but DURABLE_CODEMODE_CODEC_KEY is key sha256:/,
    );
    expect(() => codecFromEnv({ [CODEC_KEY_ENV]: Buffer.alloc(16).toString('base64') })).toThrow(/must be 32 bytes/);
    expect(() => codecFromEnv({ [CODEC_KEY_ENV]: 'not base64!' })).toThrow(/not base64/);
  });
});
