/**
 * Jobs at the scale the product exists for, on a real Temporal dev server, real worker processes
 * and the demo APIs as real HTTP servers: a 100,000-row lead import that survives a flaky API and
 * two SIGKILLed workers across a continue-as-new chain, and a failed import resumed with corrected
 * code without a second write.
 */
import { readdirSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import type { Client } from '@temporalio/client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  demoProvidersConfig,
  startCrmApi,
  startSheetsApi,
  type CrmApi,
  type SheetsApi,
} from '../../demo-apis/index.ts';
import { leadImportScript } from '../../demo-apis/lead-import.ts';
import { sheetRow } from '../../demo-apis/sheets.ts';
import { JobService, JobStateError } from '../../jobs/service.ts';
import {
  connectTestClient,
  eventually,
  finished,
  spawnWorker,
  startInProcessStack,
  testConfig,
  writeConfigFile,
  type ChildWorker,
  type InProcessStack,
} from '../harness.ts';

const ROWS = 100_000;

/** Every run of a job's continue-as-new chain, with its history as text (payloads decoded). */
async function runsOf(
  client: Client,
  jobId: string,
): Promise<Array<{ runId: string; events: number; bytes: number; text: string }>> {
  const runs = [];
  for await (const info of client.workflow.list({ query: `WorkflowId = '${jobId}'` })) {
    const history = await client.workflow.getHandle(jobId, info.runId).fetchHistory();
    const text = JSON.stringify(history, (_k, v: unknown) =>
      v instanceof Uint8Array ? Buffer.from(v).toString('utf8') : v,
    );
    runs.push({ runId: info.runId, events: history.events?.length ?? 0, bytes: text.length, text });
  }
  return runs;
}

describe('a 100,000-row lead import', () => {
  let crm: CrmApi;
  let sheets: SheetsApi;
  const workers: ChildWorker[] = [];

  beforeAll(async () => {
    crm = await startCrmApi({ failureRate: 0.1, seed: 7 });
    sheets = await startSheetsApi({ sheets: { leads: ROWS } });
  });

  afterAll(async () => {
    await Promise.all(workers.map((w) => w.kill('SIGTERM')));
    await crm?.close();
    await sheets?.close();
  });

  it('imports every row exactly once through 503s and two SIGKILLed workers, each run of the chain under the history limits', async () => {
    const config = testConfig({
      providers: demoProvidersConfig({ crm, sheets }),
      limits: { memoryMb: 512 },
      maxEventsPerRun: 4_000,
    });
    for (const provider of Object.values(config.providers))
      provider.retry = { maximumAttempts: 20, initialIntervalMs: 50, maximumIntervalMs: 1_000, backoffCoefficient: 2 };
    const configFile = writeConfigFile(config);
    workers.push(await spawnWorker(configFile));
    const client = await connectTestClient(config);
    const jobs = new JobService(client, config);
    const started = await jobs.execute({ code: leadImportScript('leads'), waitSeconds: 0 });

    const imported = () => crm.stats().leads;
    for (const killAt of [30_000, 65_000]) {
      await eventually(() => (imported() >= killAt ? true : undefined), 240_000, `${killAt} leads`);
      await workers.at(-1)!.kill('SIGKILL');
      workers.push(await spawnWorker(configFile));
    }

    const done = await finished(jobs, started.job_id, 300_000);
    expect(done.status, JSON.stringify(done.error)).toBe('completed');
    expect(done.result).toEqual({ created: ROWS });
    const stats = crm.stats();
    expect(stats.leads).toBe(ROWS);
    expect(stats.duplicateEmails).toBe(0);
    expect(stats.rejectedByFailureInjection).toBeGreaterThan(50);

    const runs = await runsOf(client, started.job_id);
    expect(runs.length).toBeGreaterThan(1);
    expect(done.runs).toBe(runs.length);
    for (const run of runs) {
      expect(run.events).toBeLessThan(51_200);
      expect(run.bytes).toBeLessThan(50 * 1024 * 1024);
      // The parsed rows (a step value) and the batches built from them live in the blob store:
      // no row of the sheet appears anywhere in any run's history.
      for (const row of [0, 54_321, ROWS - 1]) expect(run.text).not.toContain(sheetRow('leads', row).email);
    }
    console.log(
      `100k import: ${runs.length} runs, events per run ${runs.map((r) => r.events).join('/')}, ${stats.rejectedByFailureInjection} injected 503s`,
    );
    await client.connection.close();
  }, 900_000);
});

describe('resuming a failed import with corrected code', () => {
  let crm: CrmApi;
  let sheets: SheetsApi;
  let stack: InProcessStack;

  beforeAll(async () => {
    crm = await startCrmApi();
    sheets = await startSheetsApi({ sheets: { leads: ROWS }, malformedRows: { leads: [60_042] } });
    stack = await startInProcessStack(
      testConfig({ providers: demoProvidersConfig({ crm, sheets }), limits: { memoryMb: 512 } }),
    );
  });

  afterAll(async () => {
    await stack?.close();
    await crm?.close();
    await sheets?.close();
  });

  it('replays the agreeing journal and never writes the first 60,000 rows twice', async () => {
    const strict = `for (const row of batch) if (!row.email.includes('@')) throw new Error('malformed email in row ' + (i + batch.indexOf(row)) + ': ' + row.email);`;
    const lenient = `batch = batch.filter((row) => row.email.includes('@'));`;
    const failed = await stack.jobs.execute({ code: leadImportScript('leads', strict), waitSeconds: 0 });
    const first = await finished(stack.jobs, failed.job_id, 300_000);
    expect(first.status).toBe('failed');
    expect(first.error!.message).toBe('malformed email in row 60042: malformed-row-60042');
    expect(crm.stats().leads).toBe(60_000);

    await expect(stack.jobs.resume('job-does-not-exist')).rejects.toThrow(/No job "job-does-not-exist"/);
    const resumed = await stack.jobs.resume(failed.job_id, leadImportScript('leads', lenient), 0);
    expect(resumed.job_id).toBe(failed.job_id);
    await expect(stack.jobs.resume(failed.job_id)).rejects.toThrow(JobStateError);

    const done = await finished(stack.jobs, failed.job_id, 300_000);
    expect(done).toMatchObject({ status: 'completed', result: { created: ROWS - 1 }, attempt: 2, divergence: null });
    const stats = crm.stats();
    expect(stats.leads).toBe(ROWS - 1);
    expect(stats.duplicateEmails).toBe(0);
    // 600 batches before the failure, 400 after: the CRM saw no second write of any batch.
    expect(stats.byRoute['POST /leads/batch']).toBe(1_000);
    await expect(stack.jobs.resume(failed.job_id)).rejects.toThrow(/completed; there is nothing to resume/);
  }, 900_000);

  it('resumes a cancelled job from its checkpoint, and reports where new code diverged', async () => {
    const code = `async () => {
      const start = resume ? resume.next : 0;
      for (let i = start; i < start + 3; i++) {
        await crm.request({ method: 'POST', path: '/leads', body: { name: 'C' + i, email: 'c' + i + '@example.com' } });
        await checkpoint({ next: i + 1 });
      }
      await sleep(600000);
    }`;
    const started = await stack.jobs.execute({ code, waitSeconds: 0 });
    await eventually(
      async () => ((await stack.jobs.status(started.job_id)).effects! >= 6 ? true : undefined),
      60_000,
      'three checkpoints',
    );
    expect((await stack.jobs.cancel(started.job_id)).status).toBe('cancelled');
    const changed = code.replace('await sleep(600000);', 'return { start };');
    const done = await stack.jobs.resume(started.job_id, changed, 30);
    // The new code reads `resume` and starts at 3, so it disagrees with the journal at once.
    expect(done).toMatchObject({
      status: 'completed',
      result: { start: 3 },
      attempt: 2,
      divergence: expect.stringMatching(/round 1, call 1/),
    });
  });

  it('fails clearly, naming the reference, when a journaled blob is missing', async () => {
    const started = await stack.jobs.execute({
      code: `async () => { const big = await step('big', () => 'x'.repeat(100000)); console.log('saved'); await sleep(3000); return big.length; }`,
      waitSeconds: 0,
    });
    await eventually(
      async () => ((await stack.jobs.status(started.job_id)).logs.includes('saved') ? true : undefined),
      30_000,
      'the step',
    );
    // The blobs go, the store's directory stays: a missing directory is an outage the job waits out.
    const blobs = join(stack.config.dataDir, 'blobs');
    for (const fanOut of readdirSync(blobs).filter((name) => name !== 'records'))
      rmSync(join(blobs, fanOut), { recursive: true, force: true });
    await stack.worker.sessions.close(); // force the next round to replay from the journal
    const done = await finished(stack.jobs, started.job_id, 120_000);
    expect(done.status).toBe('failed');
    expect(done.error!.message).toMatch(/blob sha256-[0-9a-f]{64} \(\d+ bytes\) is missing from the blob store/);
  });
});
