/**
 * execute() end to end on a real Temporal dev server, a real worker and the demo APIs as real
 * HTTP servers: inline results, long jobs polled to completion, parallel rounds, errors, replay.
 */
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { defaultPayloadConverter } from '@temporalio/common';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createBlobStore } from '../../blobs/index.ts';
import { callRecordNames } from '../../core/call-records.ts';
import {
  demoProvidersConfig,
  startCrmApi,
  startSheetsApi,
  type CrmApi,
  type SheetsApi,
} from '../../demo-apis/index.ts';
import { ScriptSyntaxError } from '../../sandbox/isolate.ts';
import {
  eventually,
  finished,
  startInProcessStack,
  testConfig,
  writeOpenApiSpec,
  type InProcessStack,
} from '../harness.ts';

let crm: CrmApi;
let sheets: SheetsApi;
let stack: InProcessStack;
/** An API of the test's own: `POST /items` answers `{ id: 'sent' }` once `beforeAnswer` (if set) is through. */
let items: Server;
let itemRequests = 0;
let beforeAnswer: ((idempotencyKey: string) => Promise<void>) | undefined;

beforeAll(async () => {
  crm = await startCrmApi();
  sheets = await startSheetsApi({ sheets: { leads: 25 } });
  items = createServer((req, res) => {
    itemRequests++;
    req.resume();
    void (beforeAnswer?.(String(req.headers['idempotency-key'])) ?? Promise.resolve()).then(() =>
      res.writeHead(200, { 'content-type': 'application/json' }).end('{"id":"sent"}'),
    );
  });
  await new Promise<void>((resolve) => items.listen(0, '127.0.0.1', resolve));
  const itemsApi = {
    openapi: writeOpenApiSpec(['POST /items']),
    baseUrl: `http://127.0.0.1:${(items.address() as AddressInfo).port}`,
  };
  stack = await startInProcessStack(
    testConfig({ providers: { ...demoProvidersConfig({ crm, sheets }), items: itemsApi } }),
  );
});

afterAll(async () => {
  await stack?.close();
  await crm?.close();
  await sheets?.close();
  items?.close();
});

describe('execute', () => {
  it('answers inline when the job finishes within wait_seconds', async () => {
    const view = await stack.jobs.execute({
      code: `async () => {
        const lead = await crm.request({ method: 'POST', path: '/leads', body: { name: input.name, email: input.email } });
        console.log('created', lead.id);
        return { id: lead.id, name: lead.name };
      }`,
      input: { name: 'Ada Lovelace', email: 'ada@example.com' },
      waitSeconds: 30,
    });
    expect(view.status).toBe('completed');
    expect(view.result).toMatchObject({ name: 'Ada Lovelace', id: expect.stringMatching(/^lead_/) });
    expect(view.logs).toEqual([`created ${(view.result as { id: string }).id}`]);
    expect(view.effects).toBe(1);
  });

  it('imports the demo sheet into the CRM: CSV in, batches out', async () => {
    crm.reset();
    const view = await stack.jobs.execute({
      code: `async () => {
        const csv = await sheets.request({ method: 'GET', path: '/sheets/leads/csv' });
        const rows = await step('parse csv', () => {
          const lines = csv.trim().split(/\\r?\\n/).slice(1);
          return lines.map((line) => {
            const cells = line.match(/("([^"]|"")*"|[^,]*)(,|$)/g).map((c) => c.replace(/,$/, '').replace(/^"|"$/g, '').replace(/""/g, '"'));
            return { name: cells[0], email: cells[1] };
          });
        });
        let created = 0;
        for (let i = 0; i < rows.length; i += 10) {
          const r = await crm.request({ method: 'POST', path: '/leads/batch', body: { leads: rows.slice(i, i + 10) } });
          created += r.count;
          progress(created, rows.length, 'importing');
        }
        return { created };
      }`,
      waitSeconds: 30,
    });
    expect(view.status).toBe('completed');
    expect(view.result).toEqual({ created: 25 });
    expect(view.progress).toEqual({ done: 25, total: 25, message: 'importing' });
    expect(crm.stats().leads).toBe(25);
  });

  it('returns a job id when the job outlives wait_seconds, and the job tool long-polls it to completion', async () => {
    const started = await stack.jobs.execute({
      code: `async () => {
        progress(1, 2, 'sleeping');
        await sleep(3000);
        progress(2, 2, 'done');
        return 'slept';
      }`,
      waitSeconds: 0.5,
    });
    expect(started.status).toBe('running');
    expect(started.job_id).toMatch(/^[a-z0-9-]+-[a-z0-9]{8}$/);
    expect(started.progress).toEqual({ done: 1, total: 2, message: 'sleeping' });
    const done = await stack.jobs.status(started.job_id, 30);
    expect(done).toMatchObject({ status: 'completed', result: 'slept', progress: { done: 2, total: 2 } });
  });

  it('runs the calls of one Promise.all in parallel, in one fused round whose summary names them', async () => {
    crm.reset();
    crm.setLatency(300);
    try {
      const view = await stack.jobs.execute({
        code: `async () => {
          const leads = await Promise.all(Array.from({ length: 10 }, (_, i) =>
            crm.request({ method: 'POST', path: '/leads', body: { name: 'P' + i, email: 'p' + i + '@example.com' } })));
          return leads.map((l) => l.name);
        }`,
        waitSeconds: 30,
      });
      expect(view.status).toBe('completed');
      expect(view.result).toEqual(Array.from({ length: 10 }, (_, i) => `P${i}`));
      expect(view.rounds).toBe(1);
      expect(crm.stats().maxInFlight).toBe(10);

      const history = await stack.client.workflow.getHandle(view.job_id).fetchHistory();
      const summaries = (history.events ?? [])
        .filter((e) => e.activityTaskScheduledEventAttributes?.activityType?.name === 'runRoundHere')
        .map((e) => defaultPayloadConverter.fromPayload(e.userMetadata!.summary!));
      expect(summaries).toEqual(['crm: POST /leads ×10']);
      // The worker that ran the workflow task holds the session: the round never went to its session queue.
      const types = (history.events ?? []).map((e) => e.activityTaskScheduledEventAttributes?.activityType?.name);
      expect(types).not.toContain('runRound');
    } finally {
      crm.setLatency(0);
    }
  });

  it('hands API errors to the script as catchable errors with status and body', async () => {
    const view = await stack.jobs.execute({
      code: `async () => {
        try {
          await crm.request({ method: 'GET', path: '/leads/lead_does_not_exist' });
          return 'no error?';
        } catch (e) {
          return { name: e.name, status: e.status, hasBody: e.body !== undefined };
        }
      }`,
      waitSeconds: 30,
    });
    expect(view.result).toEqual({ name: 'ApiError', status: 404, hasBody: true });
  });

  it('refuses paths that would leave the base URL, and unknown providers, inside the script', async () => {
    const view = await stack.jobs.execute({
      code: `async () => {
        const attempts = ['/../admin', '/%2e%2e/admin', '//evil.example/x', 'http://evil.example/'];
        const errors = [];
        for (const path of attempts) {
          try { await crm.request({ method: 'GET', path }); errors.push('allowed ' + path); } catch (e) { errors.push(e.name); }
        }
        try { await billing.request({ method: 'GET', path: '/x' }); } catch (e) { errors.push(e.name + ': ' + e.message); }
        return errors;
      }`,
      waitSeconds: 30,
    });
    expect(view.status).toBe('completed');
    expect(view.result).toEqual([
      'RequestError',
      'RequestError',
      'TypeError',
      'TypeError',
      'ReferenceError: billing is not defined',
    ]);
  });

  it('fails a job whose script throws, with the message and the line in the script', async () => {
    const view = await stack.jobs.execute({
      code: `async () => {
  const rows = [1, 2, 3];
  console.log('about to fail');
  if (rows.length === 3) throw new Error('row 3 is malformed');
}`,
      waitSeconds: 30,
    });
    expect(view.status).toBe('failed');
    expect(view.error).toMatchObject({ name: 'Error', message: 'row 3 is malformed', line: 4 });
    expect(view.error!.stack).toContain('script.js:4:');
    expect(view.logs).toEqual(['about to fail']);
  });

  it('rejects JavaScript that does not parse before starting any job, with line and column', async () => {
    const error = await stack.jobs.execute({ code: 'async () => {\n  const x = ;\n}' }).catch((e: Error) => e);
    expect(error).toBeInstanceOf(ScriptSyntaxError);
    expect((error as ScriptSyntaxError).line).toBe(2);
    expect((error as Error).message).toMatch(/^SyntaxError at line 2, column \d+: Unexpected token/);
  });

  it('fails clearly on a result that is not JSON', async () => {
    const view = await stack.jobs.execute({ code: 'async () => ({ when: 1n })', waitSeconds: 30 });
    expect(view.status).toBe('failed');
    expect(view.error!.message).toMatch(/the script result is not JSON-serializable/);
  });

  it('detects a script waiting on nothing instead of hanging', async () => {
    const view = await stack.jobs.execute({ code: 'async () => { await new Promise(() => {}); }', waitSeconds: 30 });
    expect(view.status).toBe('failed');
    expect(view.error!.message).toMatch(/waiting on nothing/);
  });

  it('cancels a running job', async () => {
    const started = await stack.jobs.execute({ code: 'async () => { await sleep(600000); }', waitSeconds: 0 });
    const cancelled = await stack.jobs.cancel(started.job_id);
    expect(cancelled.status).toBe('cancelled');
    const again = await stack.jobs.cancel(started.job_id);
    expect(again.note).toMatch(/already ended/);
  });

  it("sends a round's calls while Temporal journals the round before (calls ahead), each once", async () => {
    const arrivals = new Map<number, number>();
    beforeAnswer = async (key) => {
      arrivals.set(Number(key.split(':').at(-2)), Date.now());
      await new Promise((r) => setTimeout(r, 100));
    };
    itemRequests = 0;
    try {
      const view = await stack.jobs.execute({
        code: `async () => {
          for (let i = 0; i < 4; i++) await items.request({ method: 'POST', path: '/items', body: { i } });
          return 'done';
        }`,
        waitSeconds: 60,
      });
      expect(view.status).toBe('completed');
      expect(itemRequests).toBe(4);
      expect([...arrivals.keys()].sort()).toEqual([0, 1, 2, 3]);
      // Round k's activity is scheduled once the workflow has journaled round k-1; its call left before.
      const history = await stack.client.workflow.getHandle(view.job_id).fetchHistory();
      const scheduled = (history.events ?? [])
        .filter((e) => e.activityTaskScheduledEventAttributes?.activityType?.name === 'runRoundHere')
        .map((e) => Number(e.eventTime!.seconds) * 1000 + Math.floor((e.eventTime!.nanos ?? 0) / 1e6));
      expect(scheduled).toHaveLength(4);
      const sentAhead = [1, 2, 3].filter((seq) => arrivals.get(seq)! < scheduled[seq]);
      expect(sentAhead.length).toBeGreaterThan(0);
    } finally {
      beforeAnswer = undefined;
    }
  });

  it("a job cancelled while its next round's calls run ahead journals them: its status counts every call sent, and its resume sends none again", async () => {
    let jobKnown!: (jobId: string) => void;
    const jobId = new Promise<string>((resolve) => (jobKnown = resolve));
    const sent: number[] = [];
    // The cancel is in before round 2's call, started ahead, is answered.
    beforeAnswer = async (key) => {
      const seq = Number(key.split(':').at(-2));
      sent.push(seq);
      if (seq === 1) await stack.client.workflow.getHandle(await jobId).cancel();
    };
    itemRequests = 0;
    try {
      const code = `async () => {
        for (let i = 0; i < 4; i++) await items.request({ method: 'POST', path: '/items', body: { i } });
        return 'done';
      }`;
      const started = await stack.jobs.execute({ code, waitSeconds: 0 });
      jobKnown(started.job_id);
      const view = await finished(stack.jobs, started.job_id);
      expect(view.status).toBe('cancelled');
      // The cancel reached the workflow before round 2's activity (round 2's call is collected) or
      // during it (round 3's is): either way the journal holds every call the API got.
      expect(sent.length).toBeGreaterThanOrEqual(2);
      expect(view.effects).toBe(sent.length);
      expect(view.in_flight).toEqual([{ label: 'items: POST /items', ended: 'succeeded' }]);
      const history = await stack.client.workflow.getHandle(started.job_id).fetchHistory();
      const summaries = (history.events ?? [])
        .filter((e) => e.activityTaskScheduledEventAttributes && e.userMetadata?.summary)
        .map((e) => defaultPayloadConverter.fromPayload<string>(e.userMetadata!.summary!));
      expect(summaries).toContain('cancelled: collect the calls started ahead (items: POST /items)');

      const resumed = await stack.jobs.resume(started.job_id, undefined, 60);
      expect(resumed.status).toBe('completed');
      expect(sent).toEqual([0, 1, 2, 3]);
      expect(itemRequests).toBe(4);
    } finally {
      beforeAnswer = undefined;
    }
  });

  it('replays the journal when the live session is lost, without repeating completed calls or steps', async () => {
    crm.reset();
    const started = await stack.jobs.execute({
      code: `async () => {
        const ids = [];
        const seed = await step('pick seed', () => Math.floor(Math.random() * 1e9));
        for (let i = 0; i < 6; i++) {
          const lead = await crm.request({ method: 'POST', path: '/leads', body: { name: 'R' + i, email: 'r' + i + '.' + seed + '@example.com' } });
          ids.push(lead.id);
          await sleep(300);
        }
        return { ids, seed, at: Date.now() > 0 };
      }`,
      waitSeconds: 0,
    });
    // Drop the live session after a few calls: the next round must replay in a fresh isolate. A
    // session is out of the registry while one of its rounds runs (and back after), so drop it
    // several times across a 300 ms sleep, whatever the server's speed.
    await eventually(() => ((crm.stats().byRoute['POST /leads'] ?? 0) >= 2 ? true : undefined), 60_000, '2 creates');
    for (let i = 0; i < 8; i++) {
      await stack.worker.sessions.close();
      await new Promise((r) => setTimeout(r, 50));
    }
    const done = await finished(stack.jobs, started.job_id);
    expect(done.status).toBe('completed');
    const result = done.result as { ids: string[] };
    expect(new Set(result.ids).size).toBe(6);
    expect(crm.stats().byRoute['POST /leads']).toBe(6);
    expect(crm.stats().leads).toBe(6);
    const history = await stack.client.workflow.getHandle(started.job_id).fetchHistory();
    const replays = (history.events ?? []).filter(
      (e) => e.activityTaskScheduledEventAttributes?.activityType?.name === 'openSession',
    );
    expect(replays.length).toBeGreaterThanOrEqual(2);
  });

  it('never lets a script keep an answer whose record another attempt beat: the round replays with the recorded outcome', async () => {
    // A fused round hands the sandbox a write's answer while its outcome record is still being
    // written. Here another attempt's outcome lands first (as from a thawed worker that sent the call too).
    const store = createBlobStore(stack.config.blobs, stack.config.dataDir);
    let jobKnown!: (jobId: string) => void;
    const jobId = new Promise<string>((resolve) => (jobKnown = resolve));
    const recorded = { outcome: { ok: true, value: { id: 'recorded' } }, jobAttempt: 1 };
    beforeAnswer = async (key) => {
      beforeAnswer = undefined;
      await store.putRecord(callRecordNames.outcome(await jobId, key), Buffer.from(JSON.stringify(recorded)));
    };
    itemRequests = 0;
    const started = await stack.jobs.execute({
      code: `async () => (await items.request({ method: 'POST', path: '/items', body: {} })).id`,
      waitSeconds: 0,
    });
    jobKnown(started.job_id);
    const done = await finished(stack.jobs, started.job_id);
    expect(done.status).toBe('completed');
    expect(done.result).toBe('recorded');
    expect(itemRequests).toBe(1);
    const history = await stack.client.workflow.getHandle(started.job_id).fetchHistory();
    const sessions = (history.events ?? []).filter(
      (e) => e.activityTaskScheduledEventAttributes?.activityType?.name === 'openSession',
    );
    expect(sessions).toHaveLength(2);
  });

  it('reports an unknown job id clearly', async () => {
    await expect(stack.jobs.status('job-nope')).rejects.toThrow(/No job "job-nope"/);
  });
});
