/**
 * The one call path (activities/calls.ts) against a real local HTTP API and the local blob store:
 * recorded outcomes answer retries, stale attempts send nothing, an older attempt still sending is
 * waited for while its worker lives and is taken over (uncertain) once it does not, API failures are
 * counted in the records up to the provider's limit, cancellation lets calls in flight land, and a
 * completed job's records are gone while its stale attempts still send nothing, and a job with
 * privacy on has its owner's tokens restored in what is sent (nothing sent for a token its owner
 * lacks). Attempts are plain
 * objects here; activities/attempt.ts ties them to Temporal.
 */
import { mkdtempSync } from 'node:fs';
import { createServer, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import type { CallAttempt } from '../../activities/attempt.ts';
import { Calls, type CallEnd } from '../../activities/calls.ts';
import { ClaimCheck } from '../../blobs/claim-check.ts';
import { LocalBlobStore } from '../../blobs/local-store.ts';
import { callRecordNames, type AttemptRecord } from '../../core/call-records.ts';
import type { HttpEffect } from '../../core/journal.ts';
import { PrivacyConfig } from '../../privacy/config.ts';
import { Privacy } from '../../privacy/privacy.ts';
import { HttpProviderConfig } from '../../providers/config.ts';
import { UpstreamMcpServers } from '../../providers/mcp-client.ts';

/** What the API does with the next requests: answer 201, 503, or hold the answer for `holdMs`. */
let behaviour: { status: number; holdMs: number } = { status: 201, holdMs: 0 };
/** Requests per Idempotency-Key, as the API saw them. */
let received: Map<string, number>;
/** The bodies the API received, in order. */
let bodies: string[];
let server: Server;
let baseUrl: string;

beforeAll(async () => {
  server = createServer((req, res: ServerResponse) => {
    const key = String(req.headers['idempotency-key'] ?? `${req.method} ${req.url}`);
    received.set(key, (received.get(key) ?? 0) + 1);
    const { status, holdMs } = behaviour;
    let body = '';
    req.on('data', (chunk: Buffer) => (body += chunk.toString('utf8')));
    req.on('end', () =>
      setTimeout(() => {
        bodies.push(body);
        if (!res.writableEnded)
          res.writeHead(status, { 'content-type': 'application/json' }).end(`{"n":${received.get(key)}}`);
      }, holdMs),
    );
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  baseUrl = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});

afterAll(() => new Promise((resolve) => server.close(resolve)));

let store: LocalBlobStore;
beforeEach(() => {
  behaviour = { status: 201, holdMs: 0 };
  received = new Map();
  bodies = [];
  store = new LocalBlobStore(join(mkdtempSync(join(tmpdir(), 'dcm-calls-')), 'blobs'));
});

function calls(workerId = 'worker-a', privacy?: Privacy): Calls {
  const crm = HttpProviderConfig.parse({ openapi: 'unused.json', baseUrl, timeoutMs: 2_000 });
  return new Calls({
    providers: { crm },
    upstream: new UpstreamMcpServers({}),
    store,
    claims: new ClaimCheck(store, 4096),
    workerId,
    ...(privacy ? { privacy } : {}),
  });
}

/** An attempt scheduled at `scheduledAt` (the order among attempts), never stale unless told. */
function attempt(scheduledAt: number, options: { job?: number; stale?: boolean; graceMs?: number } = {}) {
  const controller = new AbortController();
  const a: CallAttempt & { cancel(): void } = {
    token: { job: options.job ?? 1, scheduledAt },
    signal: controller.signal,
    cancelGraceMs: options.graceMs ?? 0,
    assertCurrent() {
      if (options.stale) throw new Error('stale: did not run past its heartbeat timeout');
    },
    cancel: () => controller.abort(),
  };
  return a;
}

const post: HttpEffect = { kind: 'http', provider: 'crm', method: 'POST', path: '/leads', body: { name: 'a' } };
const get: HttpEffect = { kind: 'http', provider: 'crm', method: 'GET', path: '/leads' };
const call = (key: string, maximumAttempts = 3) => ({
  jobId: 'job-1',
  request: post,
  idempotencyKey: key,
  maximumAttempts,
});
const writeAttempt = (key: string, record: AttemptRecord) =>
  store.putRecord(callRecordNames.attempt('job-1', key), Buffer.from(JSON.stringify(record)));
const resultOf = (end: CallEnd) => ('result' in end ? end.result : expect.fail(`not settled: ${JSON.stringify(end)}`));

describe('the call path', () => {
  it('records a write’s outcome, so any later attempt at the same key gets it without sending', async () => {
    const c = calls();
    const first = resultOf(await c.call(attempt(1), call('job-1:0:k')));
    expect(first).toEqual({ outcome: { ok: true, value: { n: 1 } } });
    // A retry (a later attempt, e.g. after Temporal lost the completion) and another worker alike.
    expect(resultOf(await c.call(attempt(2), call('job-1:0:k')))).toEqual(first);
    expect(resultOf(await calls('worker-b').call(attempt(3, { job: 2 }), call('job-1:0:k')))).toEqual(first);
    expect(received.get('job-1:0:k')).toBe(1);
  });

  it('hands a write’s result back before its record when asked (recordAfter), and says when the record was not kept', async () => {
    const c = calls();
    const early = await c.call(attempt(1), { ...call('job-1:10:k'), recordAfter: true });
    expect(resultOf(early)).toEqual({ outcome: { ok: true, value: { n: 1 } } });
    await expect('result' in early && early.recorded).resolves.toBeUndefined();
    expect(resultOf(await c.call(attempt(2), call('job-1:10:k')))).toEqual(resultOf(early));
    expect(received.get('job-1:10:k')).toBe(1);

    // Another attempt records its outcome while this one waits for the API's answer.
    behaviour = { status: 201, holdMs: 300 };
    const late = c.call(attempt(3), { ...call('job-1:11:k'), recordAfter: true });
    const other = { outcome: { ok: true, value: { n: 'other' } }, jobAttempt: 1 };
    await new Promise((r) => setTimeout(r, 100));
    await store.putRecord(callRecordNames.outcome('job-1', 'job-1:11:k'), Buffer.from(JSON.stringify(other)));
    const end = await late;
    await expect('result' in end && end.recorded).rejects.toThrow(
      /another attempt recorded the outcome of crm: POST \/leads first/,
    );
    // Without recordAfter the recorded outcome is the answer.
    expect(resultOf(await c.call(attempt(4), call('job-1:11:k'))).outcome).toEqual(other.outcome);
  });

  it('sends nothing from an attempt that stalled past its heartbeat timeout, or that a newer attempt superseded', async () => {
    const c = calls();
    await expect(c.call(attempt(5, { stale: true }), call('job-1:1:k'))).rejects.toThrow(/stale/);
    await writeAttempt('job-1:1:k', {
      attempt: { job: 1, scheduledAt: 10 },
      worker: 'worker-b',
      at: Date.now(),
      state: 'sending',
      apiFailures: 0,
    });
    await expect(c.call(attempt(7), call('job-1:1:k'))).rejects.toThrow(/newer attempt/);
    expect(received.get('job-1:1:k')).toBeUndefined();
  });

  it('waits for an older attempt still sending from a live worker, and returns the outcome it records', async () => {
    behaviour = { status: 201, holdMs: 1_500 };
    const older = calls('worker-a').call(attempt(1), call('job-1:2:k'));
    await new Promise((r) => setTimeout(r, 300)); // the older attempt has sent and waits for the answer
    const newer = await calls('worker-b').call(attempt(2), call('job-1:2:k'));
    expect(resultOf(newer)).toEqual(resultOf(await older));
    expect(received.get('job-1:2:k')).toBe(1);
  });

  it('takes over from an older attempt whose worker is gone, marking the call uncertain', async () => {
    await writeAttempt('job-1:3:k', {
      attempt: { job: 1, scheduledAt: 1 },
      worker: 'worker-killed',
      at: Date.now() - 10_000,
      state: 'sending',
      apiFailures: 0,
    });
    const end = await calls().call(attempt(2), call('job-1:3:k'));
    expect(resultOf(end)).toEqual({ outcome: { ok: true, value: { n: 1 } }, uncertain: true });
    // The uncertainty is recorded with the outcome: a later attempt reports it too.
    expect(resultOf(await calls().call(attempt(3), call('job-1:3:k')))).toMatchObject({ uncertain: true });
  });

  it('fails a write of each() with reconcile (onUncertain) instead of sending it again after its worker was lost', async () => {
    await writeAttempt('job-1:5:k', {
      attempt: { job: 1, scheduledAt: 1 },
      worker: 'worker-killed',
      at: Date.now() - 10_000,
      state: 'sending',
      apiFailures: 0,
    });
    const reconciled = { ...call('job-1:5:k'), request: { ...post, onUncertain: 'fail' as const } };
    const end = resultOf(await calls().call(attempt(2), reconciled));
    expect(end.outcome).toMatchObject({ ok: false, error: { name: 'UncertainCallError' } });
    expect(received.get('job-1:5:k')).toBeUndefined();
    // Recorded: a later attempt gets the same answer, and still sends nothing.
    expect(resultOf(await calls().call(attempt(3), reconciled)).outcome).toEqual(end.outcome);
    expect(received.get('job-1:5:k')).toBeUndefined();
  });

  it('counts the failures the API returned against maximumAttempts, then records a final ApiError; a new job attempt starts over', async () => {
    behaviour = { status: 503, holdMs: 0 };
    const c = calls();
    for (const n of [1, 2]) {
      const end = await c.call(attempt(n), call('job-1:4:k'));
      expect(end).toEqual({ retry: { message: 'POST /leads → 503 Service Unavailable', status: 503, failures: n } });
    }
    const last = resultOf(await c.call(attempt(3), call('job-1:4:k')));
    expect(last.outcome).toEqual({
      ok: false,
      error: {
        name: 'ApiError',
        message: 'crm: POST /leads failed after 3 attempt(s): POST /leads → 503 Service Unavailable',
        status: 503,
      },
    });
    // An attempt lost in between (an infrastructure failure) never counted: 3 attempts, 3 requests.
    expect(received.get('job-1:4:k')).toBe(3);
    // After job_resume (attempt 2 of the job), the failed call runs again.
    behaviour = { status: 201, holdMs: 0 };
    expect(resultOf(await c.call(attempt(4, { job: 2 }), call('job-1:4:k'))).outcome).toEqual({
      ok: true,
      value: { n: 4 },
    });
  });

  it('stops calls not yet sent when cancelled, and lets a call in flight land within the grace period', async () => {
    const c = calls();
    const cancelledFirst = attempt(1);
    cancelledFirst.cancel();
    expect(await c.call(cancelledFirst, call('job-1:5:k'))).toEqual({ unsettled: 'not sent' });
    expect(received.get('job-1:5:k')).toBeUndefined();

    behaviour = { status: 201, holdMs: 400 };
    const inFlight = attempt(2, { graceMs: 5_000 });
    const landing = c.call(inFlight, call('job-1:5:k'));
    await new Promise((r) => setTimeout(r, 100));
    inFlight.cancel();
    expect(resultOf(await landing).outcome).toEqual({ ok: true, value: { n: 1 } });
    // Recorded: job_resume's attempt gets it without sending.
    expect(resultOf(await c.call(attempt(3, { job: 2 }), call('job-1:5:k'))).outcome).toEqual({
      ok: true,
      value: { n: 1 },
    });
    expect(received.get('job-1:5:k')).toBe(1);

    const tooSlow = attempt(4, { graceMs: 100 });
    behaviour = { status: 201, holdMs: 2_000 };
    const aborted = c.call(tooSlow, call('job-1:6:k'));
    await new Promise((r) => setTimeout(r, 100));
    tooSlow.cancel();
    expect(await aborted).toEqual({ unsettled: 'no answer' });
    // The next attempt cannot know whether it was applied: it sends, uncertain.
    behaviour = { status: 201, holdMs: 0 };
    expect(resultOf(await c.call(attempt(5, { job: 2 }), call('job-1:6:k')))).toMatchObject({ uncertain: true });
  });

  it('keeps no records for reads', async () => {
    const c = calls();
    const end = await c.call(attempt(1), {
      jobId: 'job-1',
      request: get,
      idempotencyKey: 'job-1:7:k',
      maximumAttempts: 3,
    });
    expect(resultOf(end).outcome).toMatchObject({ ok: true });
    expect(await store.getRecord(callRecordNames.attempt('job-1', 'job-1:7:k'))).toBeUndefined();
    expect(await store.getRecord(callRecordNames.outcome('job-1', 'job-1:7:k'))).toBeUndefined();
  });

  it('forgets a completed job’s records; a stale attempt that wakes up afterwards still sends nothing', async () => {
    const c = calls();
    await c.call(attempt(1), call('job-1:8:k'));
    const failures: unknown[] = [];
    await c.forgetJob('job-1', 1, (e) => failures.push(e));
    await c.close();
    expect(failures).toEqual([]);
    expect(await store.getRecord(callRecordNames.outcome('job-1', 'job-1:8:k'))).toBeUndefined();
    await expect(c.call(attempt(2), call('job-1:9:k'))).rejects.toThrow(/already completed/);
    expect(received.get('job-1:9:k')).toBeUndefined();
    // A job_resume of the completed job (attempt 2, e.g. for each()'s failed items) sends as usual.
    expect(resultOf(await c.call(attempt(3, { job: 2 }), call('job-1:9:k'))).outcome).toMatchObject({ ok: true });
    expect(received.get('job-1:9:k')).toBe(1);
  });

  it('ends a job without waiting for its records to be deleted; close() waits, and a failed deletion is reported', async () => {
    const c = calls();
    await c.call(attempt(1), call('job-1:8:k'));
    let release = (): void => undefined;
    const slow = {
      deleteRecords: (folder: string) => new Promise<number>((r) => (release = () => r(store.deleteRecords(folder)))),
    };
    await c.forgetJob('job-1', 1, () => undefined, slow);
    expect(await store.getRecord(callRecordNames.ended('job-1'))).toBeDefined();
    expect(await store.getRecord(callRecordNames.outcome('job-1', 'job-1:8:k'))).toBeDefined();
    let closed = false;
    const closing = c.close().then(() => (closed = true));
    await new Promise((r) => setTimeout(r, 20));
    expect(closed).toBe(false);
    release();
    await closing;
    expect(await store.getRecord(callRecordNames.outcome('job-1', 'job-1:8:k'))).toBeUndefined();

    const failures: unknown[] = [];
    const down = { deleteRecords: () => Promise.reject(new Error('the store is down')) };
    await c.forgetJob('job-2', 1, (e) => failures.push(e), down);
    await c.close();
    expect(failures).toEqual([expect.objectContaining({ message: 'the store is down' })]);
  });

  it("sends the job owner's real values for its tokens, and nothing at all for a token the owner lacks", async () => {
    const privacy = new Privacy(PrivacyConfig.parse({ enabled: true }), { store });
    const [token] = await privacy.tokenize('alice', ['ada@example.com']);
    const c = calls('worker-a', privacy);
    const request: HttpEffect = { ...post, body: { email: token } };
    const sent = await c.call(attempt(1), { ...call('k-alice'), request, privacyOwner: 'alice' });
    expect(sent).toMatchObject({ result: { outcome: { ok: true } } });
    expect(bodies.map((b) => JSON.parse(b) as unknown)).toEqual([{ email: 'ada@example.com' }]);

    const refused = await c.call(attempt(1), { ...call('k-bob'), request, privacyOwner: 'bob' });
    expect(refused).toMatchObject({ result: { outcome: { ok: false, error: { name: 'PrivacyTokenError' } } } });
    expect(bodies).toHaveLength(1);
    // A worker wired without privacy fails the attempt rather than send the token.
    await expect(calls().call(attempt(2), { ...call('k-none'), request, privacyOwner: 'alice' })).rejects.toThrow(
      /no privacy/,
    );
    expect(bodies).toHaveLength(1);
  });
});
