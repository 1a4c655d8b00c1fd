/**
 * Every limit, through a real worker: the job that hits it ends with an error naming the limit,
 * while a healthy job running on the same worker at the same time completes. And a worker with
 * fewer session slots than jobs runs them all, never more at once than its limit.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { SandboxLimits } from '../../core/limits.ts';
import { JobService, ScriptTooLargeError, type JobView } from '../../jobs/service.ts';
import { finished, startInProcessStack, testConfig, type InProcessStack } from '../harness.ts';

let stack: InProcessStack;

beforeAll(async () => {
  stack = await startInProcessStack(testConfig({}));
});

afterAll(async () => {
  await stack?.close();
});

/** Jobs started with these limits (they travel with the job), on the shared worker. */
function jobsWith(limits: Partial<SandboxLimits>): JobService {
  return new JobService(stack.client, { ...stack.config, limits: SandboxLimits.parse(limits) });
}

const HEALTHY = `async () => { let n = 0; for (let i = 0; i < 5; i++) { await checkpoint({ i }); n += i; } return n; }`;

/** Runs the offending job and a healthy one side by side; returns the offender's final view. */
async function alongsideHealthy(limits: Partial<SandboxLimits>, code: string): Promise<JobView> {
  const [bad, good] = await Promise.all([
    jobsWith(limits).execute({ code, waitSeconds: 60 }),
    stack.jobs.execute({ code: HEALTHY, waitSeconds: 60 }),
  ]);
  expect(good).toMatchObject({ status: 'completed', result: 10 });
  return bad;
}

describe('limits end the job that hits them, and only that job', () => {
  it('isolate memory (memoryMb)', async () => {
    const view = await alongsideHealthy(
      { memoryMb: 16 },
      `async () => { const a = []; for (;;) a.push('x'.repeat(1e4) + a.length); }`,
    );
    expect(view).toMatchObject({
      status: 'failed',
      error: { name: 'MemoryLimitError', message: expect.stringMatching(/memory limit of 16 MiB was exceeded/) },
    });
  });

  it('CPU time per round (roundTimeoutMs)', async () => {
    const view = await alongsideHealthy({ roundTimeoutMs: 300 }, `async () => { await checkpoint({}); for (;;) {} }`);
    expect(view).toMatchObject({
      status: 'failed',
      error: { name: 'TimeLimitError', message: expect.stringMatching(/for more than 300 ms/) },
    });
  });

  it('effects per job (maxEffectsPerJob) and per round (maxEffectsPerRound)', async () => {
    const perJob = await alongsideHealthy(
      { maxEffectsPerJob: 10 },
      `async () => { for (let i = 0; i < 20; i++) await checkpoint({ i }); }`,
    );
    expect(perJob).toMatchObject({
      status: 'failed',
      effects: 10,
      error: { name: 'EffectLimitError', message: expect.stringMatching(/limit of 10 API calls/) },
    });
    const perRound = await alongsideHealthy(
      { maxEffectsPerRound: 10 },
      `async () => Promise.all(Array.from({ length: 11 }, (_, i) => checkpoint({ i })))`,
    );
    expect(perRound).toMatchObject({
      status: 'failed',
      error: { name: 'EffectLimitError', message: expect.stringMatching(/the limit is 10 per round/) },
    });
  });

  it('result size (maxResultBytes)', async () => {
    const view = await alongsideHealthy({ maxResultBytes: 1000 }, `async () => 'x'.repeat(5000)`);
    expect(view).toMatchObject({
      status: 'failed',
      error: { name: 'ResultTooLargeError', message: expect.stringMatching(/returned 5002 bytes; the limit is 1000/) },
    });
  });

  it('log size (maxLogBytes): lines past the limit are dropped and counted, the job goes on', async () => {
    const view = await alongsideHealthy(
      { maxLogBytes: 200 },
      `async () => { for (let i = 0; i < 100; i++) console.log('line ' + i); return 'finished'; }`,
    );
    expect(view).toMatchObject({ status: 'completed', result: 'finished' });
    expect(view.logs.at(-1)).toMatch(/^\[\d+ log line\(s\) dropped: log limit reached\]$/);
    expect(view.logs.slice(0, -1).join('').length).toBeLessThanOrEqual(200);
  });

  it('script size (maxScriptBytes): refused before any job starts', async () => {
    const code = `async () => ${JSON.stringify('x'.repeat(2000))}`;
    await expect(jobsWith({ maxScriptBytes: 1000 }).execute({ code })).rejects.toThrow(ScriptTooLargeError);
    await expect(jobsWith({ maxScriptBytes: 1000 }).execute({ code })).rejects.toThrow(
      /the limit is 1000 \(limits\.maxScriptBytes\)/,
    );
  });

  it('wall time per job (maxJobSeconds), after which the job can still be resumed from its journal', async () => {
    const jobs = jobsWith({ maxJobSeconds: 2 });
    const started = Date.now();
    const view = await alongsideHealthy(
      { maxJobSeconds: 2 },
      `async () => { await checkpoint({ at: 'start' }); await sleep(600000); return 'woke'; }`,
    );
    expect(Date.now() - started).toBeLessThan(30_000);
    expect(view).toMatchObject({
      status: 'failed',
      error: {
        name: 'JobTimeLimitError',
        message: expect.stringMatching(/^The job ran longer than its limit of 2 s \(limits\.maxJobSeconds\)/),
      },
    });
    const resumed = await jobs.resume(
      view.job_id,
      `async () => { await checkpoint({ at: 'start' }); return resume; }`,
      30,
    );
    expect(resumed).toMatchObject({ status: 'completed', attempt: 2, result: { at: 'start' } });
  });
});

describe('concurrent sessions per worker (worker.maxConcurrentSessions)', () => {
  it('runs more jobs than slots: excess rounds wait, idle sessions make room, nothing is lost', async () => {
    const small = await startInProcessStack(testConfig({ worker: { maxConcurrentSessions: 2 } }));
    try {
      // Each job computes for a while in every round and holds its sandbox between rounds.
      const code = `async () => {
        let total = 0;
        for (let r = 0; r < 3; r++) {
          let x = 0;
          for (let i = 0; i < 2e7; i++) x = (x + i) % 1000003;
          total += await step('round ' + r, () => x);
          await checkpoint({ r });
        }
        return total + input;
      }`;
      const started = await Promise.all(
        Array.from({ length: 6 }, (_, i) => small.jobs.execute({ code, input: i, waitSeconds: 0 })),
      );
      const views = await Promise.all(started.map((v) => finished(small.jobs, v.job_id)));
      const expected = await finished(
        small.jobs,
        (await small.jobs.execute({ code, input: 0, waitSeconds: 0 })).job_id,
      );
      expect(expected.status).toBe('completed');
      views.forEach((v, i) =>
        expect(v).toMatchObject({ status: 'completed', result: (expected.result as number) + i }),
      );
      expect(small.worker.sessions.peakRunning).toBe(2);
      expect(small.worker.sessions.size).toBeLessThanOrEqual(2);
    } finally {
      await small.close();
    }
  });
});
