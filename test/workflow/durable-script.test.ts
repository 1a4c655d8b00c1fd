/**
 * The durableScript workflow alone, on Temporal's time-skipping test server, with stubbed
 * activities (test/workflow/fake-sandbox.ts): the time limit after a 7-day sleep, continue-as-new
 * carrying the journal, cancellation leaving the resume memo, the replay fallback when the live
 * session is lost, and how activity failures reach the job. No real waiting: timers are skipped.
 */
import { randomUUID } from 'node:crypto';
import { CancelledFailure, WorkflowFailedError, type WorkflowHandle } from '@temporalio/client';
import { ApplicationFailure } from '@temporalio/common';
import { tsToMs } from '@temporalio/common/lib/time.js';
import type { TestWorkflowEnvironment } from '@temporalio/testing';
import { Worker, type WorkflowBundlePath } from '@temporalio/worker';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { RESUME_MEMO_KEY } from '../../core/effects.ts';
import { INTERNAL_FAILURES, type TransientHttpDetails } from '../../core/errors.ts';
import { type DurableScriptInput, FailureDetails, JobInput, type ResumeMemo } from '../../core/journal.ts';
import type { durableScript } from '../../workflows/durable-script.ts';
import { checkpoint, type FakeOptions, type FakeScript, fakeActivities, http, sleep } from './fake-sandbox.ts';
import { timeSkippingEnvironment, workflowBundle } from './environment.ts';

const DAY_MS = 24 * 3600 * 1000;

let env: TestWorkflowEnvironment;
let bundle: WorkflowBundlePath;

beforeAll(async () => {
  [env, bundle] = await Promise.all([timeSkippingEnvironment(), workflowBundle()]);
});

afterAll(async () => {
  await env?.teardown();
});

function jobInput(overrides: Partial<JobInput> = {}): JobInput {
  return { ...JobInput.parse({ jobId: `job-${randomUUID()}`, code: 'async () => "fake"' }), ...overrides };
}

/**
 * Runs `body` against a job of `script` with workers on a shared and a session task queue, as a
 * worker process registers them (temporal/worker.ts).
 */
async function withJob<T>(
  script: FakeScript,
  job: JobInput,
  body: (handle: WorkflowHandle<typeof durableScript>, fake: ReturnType<typeof fakeActivities>) => Promise<T>,
  options: Omit<FakeOptions, 'sessionTaskQueue'> = {},
): Promise<T> {
  const taskQueue = `workflow-test-${randomUUID().slice(0, 8)}`;
  const sessionTaskQueue = `${taskQueue}/session`;
  const fake = fakeActivities(script, { ...options, sessionTaskQueue });
  const connection = env.nativeConnection;
  const shared = await Worker.create({ connection, taskQueue, workflowBundle: bundle, activities: fake.shared });
  const own = await Worker.create({ connection, taskQueue: sessionTaskQueue, activities: fake.session });
  const input: DurableScriptInput = { job };
  return shared.runUntil(
    own.runUntil(async () => {
      const handle = await env.client.workflow.start<typeof durableScript>('durableScript', {
        taskQueue,
        workflowId: job.jobId,
        args: [input],
      });
      return body(handle, fake);
    }),
  );
}

/** The job's failure, as the job service reads it: the ApplicationFailure and its parsed details. */
async function failureOf(handle: WorkflowHandle): Promise<{ type: string | undefined; details: FailureDetails }> {
  const error = await handle.result().then(
    () => expect.fail('the job completed'),
    (e: unknown) => e,
  );
  expect(error).toBeInstanceOf(WorkflowFailedError);
  const cause = (error as WorkflowFailedError).cause;
  expect(cause).toBeInstanceOf(ApplicationFailure);
  const failure = cause as ApplicationFailure;
  return { type: failure.type ?? undefined, details: FailureDetails.parse(failure.details?.[0]) };
}

async function resumeMemoOf(handle: WorkflowHandle): Promise<ResumeMemo | undefined> {
  return (await handle.describe()).memo?.[RESUME_MEMO_KEY] as ResumeMemo | undefined;
}

describe('durableScript with stubbed activities, on the time-skipping test server', () => {
  it('runs the rounds on the live session and completes with the summary', async () => {
    const script = { rounds: [[http('/a'), http('/b')], [sleep(60_000)]], result: { ok: true } };
    await withJob(script, jobInput(), async (handle, { calls }) => {
      expect(await handle.result()).toEqual({
        value: { ok: true },
        progress: { done: 2, total: 2, message: null },
        logs: ['round 1', 'round 2', 'round 3'],
        logCount: 3,
        rounds: 2,
        effects: 3,
        runs: 1,
        attempt: 1,
        divergence: null,
      });
      expect(calls.openSession).toHaveLength(1);
      expect(calls.advanceSession.map((a) => a.roundsDelivered)).toEqual([0, 1]);
      // Each call's idempotency key carries its position in the job (the two ran in parallel, in any order).
      expect(calls.callProvider.map((c) => c.idempotencyKey.split(':')[1]).sort()).toEqual(['0', '1']);
    });
  });

  it('fails with JobTimeLimitError when a 7-day sleep outlasts maxJobSeconds, leaving its journal to resume', async () => {
    const week = 7 * 24 * 3600;
    const job = jobInput({ limits: { ...jobInput().limits, maxJobSeconds: week } });
    const script = { rounds: [[http('/a')], [sleep(8 * DAY_MS)]], result: 'never' };
    await withJob(script, job, async (handle, { calls }) => {
      const { type, details } = await failureOf(handle);
      // On the server's clock, the job ended after its week, before the script's 8-day sleep.
      const lasted = await jobDurationMs(handle);
      expect(lasted).toBeGreaterThanOrEqual(week * 1000);
      expect(lasted).toBeLessThan(8 * DAY_MS);
      expect(type).toBe('JobTimeLimitError');
      expect(details).toMatchObject({
        error: { name: 'JobTimeLimitError', message: expect.stringMatching(/limit of 604800 s/) },
        rounds: 1,
        effects: 1,
      });
      // This run's one completed round was saved and left for job_resume.
      expect(calls.saveJournal).toHaveLength(1);
      expect(calls.saveJournal[0]).toMatchObject([{ effects: [{ label: 'crm: GET /a', outcome: { ok: true } }] }]);
      expect(await resumeMemoOf(handle)).toEqual({ journal: [{ blob: 'segment-1', bytes: expect.any(Number) }] });
    });
  });

  it('continues as new when the run has enough events, carrying the journal and the live session', async () => {
    const rounds = Array.from({ length: 8 }, (_, i) => [http(`/items/${i}`)]);
    const job = jobInput({ maxEventsPerRun: 30 });
    await withJob({ rounds, result: 'imported' }, job, async (handle, { calls }) => {
      const result = await handle.result();
      expect(result).toMatchObject({ value: 'imported', rounds: 8, effects: 8, logCount: 9 });
      expect(result.runs).toBeGreaterThan(2);
      // One saved segment per continue-as-new; the session stayed live across runs (opened once).
      expect(calls.saveJournal).toHaveLength(result.runs - 1);
      expect(calls.openSession).toHaveLength(1);
      expect(calls.advanceSession.map((a) => a.roundsDelivered)).toEqual([0, 1, 2, 3, 4, 5, 6, 7]);
      expect(calls.callProvider.map((c) => Number(c.idempotencyKey.split(':')[1]))).toEqual([0, 1, 2, 3, 4, 5, 6, 7]);
      // The last run started with every earlier run's rounds, by reference, in order.
      const { carried } = await latestRunInput(handle);
      expect(carried?.journal.map((ref) => ref.blob)).toEqual(calls.saveJournal.map((_, i) => `segment-${i + 1}`));
      expect(calls.saveJournal.flat()).toHaveLength(carried!.state.rounds);
    });
  });

  it('when cancelled, saves the rounds so far and leaves journal and checkpoint in the resume memo', async () => {
    const script = { rounds: [[http('/a'), checkpoint({ next: 1 })], [sleep(DAY_MS)]], result: 'never' };
    await withJob(script, jobInput(), async (handle, { calls }) => {
      await waitForTimer(handle, DAY_MS); // the script's sleep, in round 2
      await handle.cancel();
      const error = await handle.result().then(
        () => expect.fail('the job completed'),
        (e: unknown) => e,
      );
      expect((error as WorkflowFailedError).cause).toBeInstanceOf(CancelledFailure);
      expect(calls.saveJournal).toHaveLength(1);
      expect(calls.saveJournal[0][0].effects.map((e) => e.label)).toEqual(['crm: GET /a', 'checkpoint']);
      expect(await resumeMemoOf(handle)).toEqual({
        journal: [{ blob: 'segment-1', bytes: expect.any(Number) }],
        checkpoint: { next: 1 },
      });
    });
  });

  it('replays the journal in a new session when the live one is lost', async () => {
    const script = { rounds: [[http('/a')], [http('/b')], [http('/c')]], result: 3 };
    await withJob(
      script,
      jobInput(),
      async (handle, { calls }) => {
        expect(await handle.result()).toMatchObject({ value: 3, rounds: 3, effects: 3 });
        expect(calls.openSession).toHaveLength(2);
        const replay = calls.openSession[1];
        expect(replay.journal.segments).toEqual([]);
        expect(replay.journal.rounds.map((r) => r.effects.map((e) => e.label))).toEqual([
          ['crm: GET /a'],
          ['crm: GET /b'],
        ]);
        // The lost round's outcomes were not lost: they are the journal's last round.
        expect(replay.journal.rounds[1].effects[0].outcome).toEqual({ ok: true, value: { seq: 1 } });
        // No call was made twice.
        expect(calls.callProvider).toHaveLength(3);
      },
      { loseSessionAtRound: 2 },
    );
  });

  it('gives the script an ApiError with the last HTTP status once transient failures outlast the retries', async () => {
    const job = jobInput({
      retry: { crm: { maximumAttempts: 3, initialIntervalMs: 1000, maximumIntervalMs: 1000, backoffCoefficient: 1 } },
    });
    const unavailable = async () => {
      const details: TransientHttpDetails = { status: 503 };
      throw ApplicationFailure.create({
        type: INTERNAL_FAILURES.TransientHttpError,
        message: 'GET /a → 503',
        details: [details],
      });
    };
    await withJob(
      { rounds: [[http('/a')]], result: 'done' },
      job,
      async (handle, { calls }) => {
        await handle.result();
        expect(calls.callProvider).toHaveLength(3);
        expect(calls.advanceSession[0].outcomes).toEqual([
          {
            ok: false,
            error: {
              name: 'ApiError',
              message: expect.stringMatching(/^crm: GET \/a failed after retries: /),
              status: 503,
            },
          },
        ]);
      },
      { callProvider: unavailable },
    );
  });

  it.each([
    {
      failure: 'a catalogued one (a missing blob) ends the job under its name, at once',
      error: () => ApplicationFailure.nonRetryable('blob sha256-x is missing', 'BlobMissingError'),
      name: 'BlobMissingError',
      message: 'blob sha256-x is missing',
      attempts: 1,
    },
    {
      failure: 'any other ends it as ActivityError, after the retry policy (backoff skipped)',
      error: () => new Error('the disk is full'),
      name: 'ActivityError',
      message: 'the disk is full',
      attempts: 5,
    },
  ])('an activity failure of the job itself: $failure', async ({ error, name, message, attempts }) => {
    await withJob(
      { rounds: [], result: null },
      jobInput(),
      async (handle, { calls }) => {
        const { type, details } = await failureOf(handle);
        expect(type).toBe(name);
        expect(details.error).toEqual({ name, message });
        expect(calls.openSession).toHaveLength(attempts);
      },
      { openSessionError: error },
    );
  });
});

/** The input the job's latest run started with. */
async function latestRunInput(handle: WorkflowHandle): Promise<DurableScriptInput> {
  const history = await handle.fetchHistory();
  const payload = history.events?.[0]?.workflowExecutionStartedEventAttributes?.input?.payloads?.[0];
  return env.client.options.loadedDataConverter.payloadConverter.fromPayload<DurableScriptInput>(payload!);
}

/** From the job's start to its last event, on the (time-skipping) server's clock. */
async function jobDurationMs(handle: WorkflowHandle): Promise<number> {
  const events = (await handle.fetchHistory()).events ?? [];
  const ms = (event: (typeof events)[number]) => tsToMs(event.eventTime);
  return ms(events.at(-1)!) - ms(events[0]);
}

/** Waits (in real time, a poll every 50 ms) until the job has started a timer of `ms` (not the job's deadline). */
async function waitForTimer(handle: WorkflowHandle, ms: number): Promise<void> {
  for (let i = 0; i < 200; i++) {
    const { events } = await handle.fetchHistory();
    const timeouts = events?.flatMap((event) => event.timerStartedEventAttributes?.startToFireTimeout ?? []);
    if (timeouts?.some((timeout) => tsToMs(timeout) === ms)) return;
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  throw new Error(`the job started no timer of ${ms} ms within 200 polls`);
}
