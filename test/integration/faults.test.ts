/**
 * The faults that used to repeat writes (issue 11), against real worker processes, a real Temporal
 * dev server and the demo CRM, which counts every write's Idempotency-Key: a write the API sees
 * twice is a repeated write, whether or not the key absorbed it.
 *
 * - Workers frozen with SIGSTOP while a healthy worker runs, thawed after 25 s: the healthy one
 *   takes over, the thawed ones send nothing stale, the job completes, even with a provider's
 *   retry.maximumAttempts of 2 (infrastructure failures never use up API retries).
 * - The Temporal server SIGKILLed with a call in flight and restarted on the same SQLite file: the
 *   call's outcome outlives its lost completion, nothing is sent twice.
 * - job_cancel during a round of 10 parallel writes, then job_resume: the writes in flight land,
 *   are journaled and are not sent again; exactly 20 leads.
 * The one case left, a worker lost after sending and before any response, is counted: every
 * repeated write must be one the job reports as uncertain, by its Idempotency-Key.
 */
import { existsSync, mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Client, Connection } from '@temporalio/client';
import { setTimeout as delay } from 'node:timers/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { inFlightAt, timeoutsSince } from '../../bench/fault-report.ts';
import { CRM_SPEC_PATH, startCrmApi, type CrmApi } from '../../demo-apis/crm.ts';
import { JobService } from '../../jobs/service.ts';
import { dataConverter } from '../../temporal/codec.ts';
import { startDevServer, type DevServer } from '../../temporal/dev-server.ts';
import { freePort } from '../../temporal/ports.ts';
import {
  connectTestClient,
  eventually,
  finished,
  spawnWorker,
  startInProcessStack,
  testConfig,
  writeConfigFile,
  type ChildWorker,
} from '../harness.ts';

let crm: CrmApi;
const workers: ChildWorker[] = [];

beforeAll(async () => {
  crm = await startCrmApi({ latencyMs: 100 });
});

afterAll(async () => {
  for (const w of workers) w.signal('SIGCONT');
  await Promise.all(workers.map((w) => w.kill('SIGKILL')));
  await crm?.close();
});

function importScript(prefix: string, calls: number) {
  return `async () => {
    for (let i = 0; i < ${calls}; i++) {
      await crm.request({ method: 'POST', path: '/leads', body: { name: '${prefix} ' + i, email: '${prefix}' + i + '@example.com' } });
      progress(i + 1, ${calls});
    }
    return 'done';
  }`;
}

const posts = () => crm.stats().byRoute['POST /leads'] ?? 0;

/** Requests a worker sent before it was frozen reach the CRM (in this process) within this. */
const IN_FLIGHT_SETTLE_MS = 200;

describe('faults that used to repeat writes', () => {
  it('takes over from frozen workers within the fail-over bound; the thawed ones send nothing stale (retry.maximumAttempts 2)', async () => {
    crm.reset();
    const config = testConfig({
      providers: {
        crm: { openapi: CRM_SPEC_PATH, baseUrl: crm.url, retry: { maximumAttempts: 2, initialIntervalMs: 200 } },
      },
    });
    const configFile = writeConfigFile(config);
    const frozen = [await spawnWorker(configFile), await spawnWorker(configFile)];
    workers.push(...frozen);
    const client = await connectTestClient(config);
    const jobs = new JobService(client, config);
    const started = await jobs.execute({ code: importScript('frozen', 60), waitSeconds: 0 });
    await eventually(() => (posts() >= 10 ? true : undefined), 60_000, '10 writes');

    for (const w of frozen) w.signal('SIGSTOP');
    const frozenAt = Date.now();
    // What the frozen workers sent before the freeze reaches the CRM within this; they send nothing after it.
    await delay(IN_FLIGHT_SETTLE_MS);
    const before = posts();
    const sentBeforeFreeze = crm.writes().map((w) => w.idempotencyKey);
    const healthy = await spawnWorker(configFile);
    workers.push(healthy);
    const pollingAt = Date.now();
    await eventually(() => (posts() > before ? true : undefined), 120_000, 'progress on the healthy worker');
    const progressAt = Date.now();
    await delay(Math.max(0, frozenAt + 25_000 - Date.now()));
    for (const w of frozen) w.signal('SIGCONT');

    const done = await finished(jobs, started.job_id);
    expect(done.status, JSON.stringify(done.error)).toBe('completed');
    expect(crm.stats()).toMatchObject({ leads: 60, duplicateEmails: 0 });
    // Thawed workers may still finish calls they had sent (recorded, so never sent again); they send nothing new.
    await delay(3_000);
    // The script sends one write at a time, so at most one was in flight at the freeze: the only
    // write that may reach the CRM twice (nobody saw its response). The job must report it uncertain
    // by its Idempotency-Key; any other write sent twice is a stale attempt sending.
    const inFlight = inFlightAt(sentBeforeFreeze.at(-1));
    const uncertain = done.uncertain_keys ?? [];
    expect(uncertain.length).toBeLessThanOrEqual(1);
    expect(uncertain.filter((key) => !inFlight(key))).toEqual([]);
    expect(done.uncertain_calls ?? 0).toBe(uncertain.length);
    const { replayedKeys } = crm.stats();
    expect(replayedKeys).toEqual(uncertain.filter((key) => replayedKeys.includes(key)));
    const history = await client.workflow.getHandle(started.job_id).fetchHistory();
    console.log(
      `[faults] frozen workers: healthy worker polling ${pollingAt - frozenAt} ms after the freeze, progress after ${progressAt - frozenAt} ms; ${posts()} writes for 60 leads, ${replayedKeys.length} repeated, ${uncertain.length} uncertain; timeouts since the freeze: ${timeoutsSince(history.events ?? [], frozenAt).join(', ')}`,
    );
    for (const w of frozen) await w.kill('SIGTERM');
    await client.connection.close();
  });

  it('repeats no write when the Temporal server is SIGKILLed with a call in flight and restarted on the same database', async () => {
    crm.reset();
    crm.setLatency(1_500);
    const db = join(mkdtempSync(join(tmpdir(), 'dcm-restart-')), 'temporal.sqlite');
    const port = await freePort('127.0.0.1');
    let server: DevServer = await startDevServer({ dbFilename: db, port });
    // The file journals ahead (temporal/dev-server.ts): this test is what shows a kill loses no commit.
    expect(existsSync(`${db}-wal`)).toBe(true);
    const address = server.address;
    try {
      const config = testConfig({ providers: { crm: { openapi: CRM_SPEC_PATH, baseUrl: crm.url } } });
      config.temporal.address = address;
      config.temporal.namespace = 'default';
      const worker = await spawnWorker(writeConfigFile(config), {
        TEMPORAL_ADDRESS: address,
        TEMPORAL_NAMESPACE: 'default',
      });
      workers.push(worker);
      const connection = await Connection.connect({ address });
      const client = new Client({ connection, namespace: 'default', dataConverter: dataConverter() });
      const jobs = new JobService(client, config);
      const started = await jobs.execute({ code: importScript('restart', 8), waitSeconds: 0 });
      await eventually(() => (posts() >= 3 ? true : undefined), 60_000, '3 writes');
      // The third write is in flight (1.5 s at the CRM) when the server dies.
      process.kill(server.pid, 'SIGKILL');
      await new Promise((r) => setTimeout(r, 3_000));
      server = await startDevServer({ dbFilename: db, port });
      const done = await finished(jobs, started.job_id);
      expect(done.status, JSON.stringify(done.error)).toBe('completed');
      expect(crm.stats()).toMatchObject({ leads: 8, duplicateEmails: 0, idempotentReplays: 0 });
      expect(posts()).toBe(8);
      console.log(`[faults] Temporal SIGKILL mid-call and restart: ${posts()} writes for 8 leads, 0 repeated`);
      await worker.kill('SIGTERM');
      await connection.close();
    } finally {
      crm.setLatency(100);
      await server.teardown();
    }
  });

  it('lets writes in flight land when a job is cancelled mid-round, so job_resume does not send them again', async () => {
    crm.reset();
    crm.setLatency(1_500);
    const stack = await startInProcessStack(
      testConfig({ providers: { crm: { openapi: CRM_SPEC_PATH, baseUrl: crm.url } } }),
    );
    try {
      const code = `async () => {
        for (const round of [0, 1]) {
          await Promise.all(Array.from({ length: 10 }, (_, i) => crm.request({
            method: 'POST', path: '/leads', body: { name: 'C' + round + i, email: 'c' + round + '-' + i + '@example.com' },
          })));
          progress(round + 1, 2, 'rounds');
        }
        return 'done';
      }`;
      const started = await stack.jobs.execute({ code, waitSeconds: 0 });
      await eventually(() => (posts() >= 10 ? true : undefined), 60_000, 'the first round in flight');
      const cancelled = await stack.jobs.cancel(started.job_id);
      expect(cancelled.status).toBe('cancelled');
      // What was in flight, and how it ended: the 10 writes landed within the grace period.
      expect(cancelled.in_flight).toEqual(Array(10).fill({ label: 'crm: POST /leads', ended: 'succeeded' }));
      expect(cancelled.progress).toEqual({ done: 1, total: 2, message: 'rounds' });

      const resumed = await stack.jobs.resume(started.job_id, undefined, 60);
      const done = resumed.status === 'running' ? await finished(stack.jobs, started.job_id) : resumed;
      expect(done.status, JSON.stringify(done.error)).toBe('completed');
      expect(crm.stats()).toMatchObject({ leads: 20, duplicateEmails: 0, idempotentReplays: 0 });
      expect(posts()).toBe(20);
    } finally {
      crm.setLatency(100);
      await stack.close();
    }
  });
});
