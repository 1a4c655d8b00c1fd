/**
 * The durableScript workflow alone, on Temporal's time-skipping test server, with stubbed
 * activities (test/workflow/fake-sandbox.ts): the history shape of fused rounds (one activity and
 * one workflow task per round), rounds that sleep, batched mode, transient API failures inside a
 * fused round, the time limit after a 7-day sleep, continue-as-new carrying the journal (also from
 * a run of v0.1.0), cancellation leaving the resume memo, the replay fallback when the live session
 * is lost, and how activity failures reach the job. No real waiting: timers are skipped.
 */
import { randomUUID } from 'node:crypto';
import { CancelledFailure, WorkflowFailedError, type WorkflowHandle } from '@temporalio/client';
import { ApplicationFailure, defaultPayloadConverter } from '@temporalio/common';
import { temporal } from '@temporalio/proto';
import { tsToMs } from '@temporalio/common/lib/time.js';
import type { TestWorkflowEnvironment } from '@temporalio/testing';
import { Worker, type WorkflowBundlePath } from '@temporalio/worker';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { RESUME_MEMO_KEY } from '../../core/effects.ts';
import { INTERNAL_FAILURES, type TransientHttpDetails } from '../../core/errors.ts';
import { type DurableScriptInput, FailureDetails, JobInput, type ResumeMemo } from '../../core/journal.ts';
import type { CallProviderArgs } from '../../activities/index.ts';
import type { durableScript } from '../../workflows/durable-script.ts';
import { newJobState } from '../../workflows/job-state.ts';
import { checkpoint, type FakeOptions, type FakeScript, fakeActivities, http, sleep } from './fake-sandbox.ts';
import { timeSkippingEnvironment, workflowBundle } from './environment.ts';

const DAY_MS = 24 * 3600 * 1000;
const { EventType } = temporal.api.enums.v1;

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
  options: Omit<FakeOptions, 'sessionTaskQueue'> & {
    /** A run continued from an earlier one: what it carries (given the session task queue). */
    carried?: (sessionTaskQueue: string) => DurableScriptInput['carried'];
  } = {},
): Promise<T> {
  const { carried, ...fakeOptions } = options;
  const taskQueue = `workflow-test-${randomUUID().slice(0, 8)}`;
  const sessionTaskQueue = sessionQueueOf(taskQueue);
  const fake = fakeActivities(script, { ...fakeOptions, sessionTaskQueue });
  const connection = env.nativeConnection;
  const shared = await Worker.create({ connection, taskQueue, workflowBundle: bundle, activities: fake.shared });
  const own = await Worker.create({ connection, taskQueue: sessionTaskQueue, activities: fake.session });
  const input: DurableScriptInput = { job, ...(carried ? { carried: carried(sessionTaskQueue) } : {}) };
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

const sessionQueueOf = (taskQueue: string) => `${taskQueue}/session`;

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
  it('runs call-only rounds fused (one activity and one workflow task each) and a sleeping round from the workflow', async () => {
    const script = {
      rounds: [[http('/a'), http('/b')], [http('/c')], [sleep(60_000)], [http('/d')]],
      result: { ok: true },
    };
    await withJob(script, jobInput(), async (handle, { calls }) => {
      expect(await handle.result()).toEqual({
        value: { ok: true },
        progress: { done: 4, total: 4, message: null },
        logs: ['round 1', 'round 2', 'round 3', 'round 4', 'round 5'],
        logCount: 5,
        rounds: 4,
        effects: 5,
        runs: 1,
        attempt: 1,
        divergence: null,
      });
      expect(calls.openSession).toHaveLength(1);
      // Rounds 1, 2 and 4 are fused; the sleep of round 3 is a timer, then its outcome is delivered.
      expect(calls.runRound.map((a) => [a.roundsDelivered, a.firstSeq])).toEqual([
        [0, 0],
        [1, 2],
        [3, 4],
      ]);
      // Each round may start the next one's calls ahead, within the job's effect limit.
      expect(calls.runRound.map((a) => a.ahead)).toEqual(
        Array(3).fill({ maxEffectsPerJob: jobInput().limits.maxEffectsPerJob }),
      );
      expect(calls.advanceSession.map((a) => a.roundsDelivered)).toEqual([2]);
      expect(calls.makeCall).toHaveLength(0);
      // Each call's idempotency key carries its position in the job (the two ran in parallel, in any order).
      expect(calls.callProvider.map((c) => c.idempotencyKey.split(':')[1]).sort()).toEqual(['0', '1', '2', '4']);
      // The completed job's call records are deleted, by a local activity (no activity task of its own).
      expect(calls.forgetCalls).toEqual([(await handle.describe()).workflowId]);

      const events = (await handle.fetchHistory()).events ?? [];
      const activityTypes = events.flatMap((e) => e.activityTaskScheduledEventAttributes?.activityType?.name ?? []);
      expect(activityTypes).not.toContain('forgetCalls');
      const markers = events.flatMap((e) => e.markerRecordedEventAttributes?.markerName ?? []);
      expect(markers.filter((name) => name === 'core_local_activity')).toHaveLength(1);
      // One marker for the release's patches, not one each.
      expect(markers.filter((name) => name === 'core_patch')).toHaveLength(1);
      const summaries = events
        .filter((e) => e.activityTaskScheduledEventAttributes?.activityType?.name === 'runRoundHere')
        .map((e) => defaultPayloadConverter.fromPayload(e.userMetadata!.summary!));
      expect(summaries).toEqual(['crm: GET /a, crm: GET /b', 'crm: GET /c', 'crm: GET /d']);
      // Between the first two fused rounds: exactly one activity and one workflow task.
      const rounds = events.flatMap((e, i) =>
        e.activityTaskScheduledEventAttributes?.activityType?.name === 'runRoundHere' ? [i] : [],
      );
      expect(events.slice(rounds[0], rounds[1]).map((e) => EventType[e.eventType!])).toEqual([
        'EVENT_TYPE_ACTIVITY_TASK_SCHEDULED',
        'EVENT_TYPE_ACTIVITY_TASK_STARTED',
        'EVENT_TYPE_ACTIVITY_TASK_COMPLETED',
        'EVENT_TYPE_WORKFLOW_TASK_SCHEDULED',
        'EVENT_TYPE_WORKFLOW_TASK_STARTED',
        'EVENT_TYPE_WORKFLOW_TASK_COMPLETED',
      ]);
    });
  });

  it("sends a round the workflow task's worker declines to the session's own queue, and the session's later rounds straight there", async () => {
    const script = { rounds: [[http('/a')], [http('/b')], [http('/c')]], result: 'elsewhere' };
    await withJob(
      script,
      jobInput(),
      async (handle, { calls }) => {
        expect(await handle.result()).toMatchObject({ value: 'elsewhere', rounds: 3, effects: 3 });
        // Declined once, before anything ran; every round then ran once, on the holder's queue.
        expect(calls.runRoundHere.map((a) => [a.sessionId, a.roundsDelivered])).toEqual([['session-1', 0]]);
        expect(calls.runRound.map((a) => a.roundsDelivered)).toEqual([0, 1, 2]);
        expect(calls.callProvider).toHaveLength(3);
        expect(calls.openSession).toHaveLength(1);
      },
      { heldElsewhere: true },
    );
  });

  it('runs consecutive call-only rounds of a batched provider in one activity, flushing every N calls', async () => {
    const rounds = Array.from({ length: 7 }, (_, i) => [http(`/items/${i}`)]);
    const job = jobInput({ batched: ['crm'], batchFlush: { calls: 3, ms: 60_000 } });
    await withJob(
      { rounds, result: 'done' },
      job,
      async (handle, { calls }) => {
        expect(await handle.result()).toMatchObject({ value: 'done', rounds: 7, effects: 7, logCount: 8 });
        expect(calls.runRound.map((a) => [a.roundsDelivered, a.firstSeq, a.batch?.flush.calls])).toEqual([
          [0, 0, 3],
          [3, 3, 3],
          [6, 6, 3],
        ]);
        expect(calls.callProvider.map((c) => Number(c.idempotencyKey.split(':')[1]))).toEqual([0, 1, 2, 3, 4, 5, 6]);
        // A batched activity may also start the calls after its last round ahead.
        expect(calls.runRound.every((a) => a.ahead)).toBe(true);
        const summaries = ((await handle.fetchHistory()).events ?? [])
          .filter((e) => e.activityTaskScheduledEventAttributes?.activityType?.name === 'runRoundHere')
          .map((e) => defaultPayloadConverter.fromPayload(e.userMetadata!.summary!));
        expect(summaries).toEqual([
          'crm: GET /items/0 (batched)',
          'crm: GET /items/3 (batched)',
          'crm: GET /items/6 (batched)',
        ]);
      },
      {},
    );
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
      // This run's one completed round was saved and left for job_resume, with the job's summary.
      expect(calls.saveJournal).toHaveLength(1);
      expect(calls.saveJournal[0]).toMatchObject([{ effects: [{ label: 'crm: GET /a', outcome: { ok: true } }] }]);
      expect(await resumeMemoOf(handle)).toEqual({
        journal: [{ blob: 'segment-1', bytes: expect.any(Number) }],
        summary: expect.objectContaining({ rounds: 1, progress: { done: 1, total: 2, message: null } }),
      });
      // Every timer has a summary: the job's time limit is not a bare "Timer 7 days".
      const timers = ((await handle.fetchHistory()).events ?? [])
        .filter((e) => e.timerStartedEventAttributes)
        .map((e) => defaultPayloadConverter.fromPayload(e.userMetadata!.summary!));
      expect(timers).toEqual(['job time limit (limits.maxJobSeconds)', 'sleep 691200000 ms']);
    });
  });

  it('continues as new when the run has enough events, carrying the journal and the live session', async () => {
    const rounds = Array.from({ length: 16 }, (_, i) => [http(`/items/${i}`)]);
    const job = jobInput({ maxEventsPerRun: 30 });
    await withJob({ rounds, result: 'imported' }, job, async (handle, { calls }) => {
      const result = await handle.result();
      expect(result).toMatchObject({ value: 'imported', rounds: 16, effects: 16, logCount: 17 });
      expect(result.runs).toBeGreaterThan(2);
      // One saved segment per continue-as-new; the session stayed live across runs (opened once).
      expect(calls.saveJournal).toHaveLength(result.runs - 1);
      expect(calls.openSession).toHaveLength(1);
      expect(calls.runRound.map((a) => a.roundsDelivered)).toEqual(rounds.map((_, i) => i));
      expect(calls.callProvider.map((c) => Number(c.idempotencyKey.split(':')[1]))).toEqual(rounds.map((_, i) => i));
      // The last run started with every earlier run's rounds, by reference, in order.
      const { carried } = await latestRunInput(handle);
      expect(carried?.journal.map((ref) => ref.blob)).toEqual(calls.saveJournal.map((_, i) => `segment-${i + 1}`));
      expect(calls.saveJournal.flat()).toHaveLength(carried!.state.rounds);
    });
  });

  it('starts a run continued from a v0.1.0 run by delivering the outcomes it carried to the live session', async () => {
    const script = { rounds: [[http('/a')], [http('/b')], [http('/c')]], result: 'continued' };
    const job = jobInput();
    // The job started on the server's clock, which has skipped ahead of this process's.
    const state = { ...newJobState(job), startedAt: await env.currentTimeMs(), rounds: 1, effects: 1, runs: 1 };
    await withJob(
      script,
      job,
      async (handle, { calls }) => {
        // Awaiting the result lets the server skip time: first let the session worker take its first task.
        await until(() => calls.runRound.length > 0);
        expect(await handle.result()).toMatchObject({ value: 'continued', rounds: 3, effects: 3, runs: 2 });
        expect(calls.openSession).toHaveLength(0);
        expect(calls.advanceSession).toEqual([
          { sessionId: 'session-v010', roundsDelivered: 0, outcomes: [{ ok: true, value: 'from v0.1.0' }], now: 1 },
        ]);
        expect(calls.runRound.map((a) => [a.roundsDelivered, a.firstSeq])).toEqual([
          [1, 1],
          [2, 2],
        ]);
      },
      {
        liveSessions: { 'session-v010': 0 },
        carried: (sessionTaskQueue) => ({
          journal: [],
          state,
          pending: {
            session: { id: 'session-v010', taskQueue: sessionTaskQueue },
            outcomes: [{ ok: true, value: 'from v0.1.0' }],
            now: 1,
          },
        }),
      },
    );
  });

  it('when cancelled, saves the rounds so far and leaves journal, checkpoint and summary in the resume memo', async () => {
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
      // The summary keeps the cancelled job's progress and logs (job_status shows them).
      expect(await resumeMemoOf(handle)).toEqual({
        journal: [{ blob: 'segment-1', bytes: expect.any(Number) }],
        checkpoint: { next: 1 },
        summary: expect.objectContaining({
          progress: { done: 1, total: 2, message: null },
          logs: ['round 1', 'round 2'],
        }),
      });
    });
  });

  it('when the live session is lost, replays the journal in a new session and runs the round there', async () => {
    const script = { rounds: [[http('/a')], [http('/b')], [http('/c')]], result: 3 };
    await withJob(
      script,
      jobInput(),
      async (handle, { calls }) => {
        const result = await handle.result();
        expect(result).toMatchObject({
          value: 3,
          rounds: 3,
          effects: 3,
          // The replayed session's report repeats round 2's: its log line is not taken in twice.
          logs: ['round 1', 'round 2', 'round 3', 'round 4'],
        });
        // The job's summary counts the uncertain call and names it by the Idempotency-Key the API got.
        expect(result).toMatchObject({ uncertainCalls: 1, uncertainKeys: [calls.callProvider[0].idempotencyKey] });
        expect(calls.openSession).toHaveLength(2);
        const replay = calls.openSession[1];
        expect(replay.journal.segments).toEqual([]);
        expect(replay.journal.rounds.map((r) => r.effects.map((e) => e.label))).toEqual([['crm: GET /a']]);
        // Round 1's call was reported uncertain (sent again after a lost attempt): the journal says so.
        expect(replay.journal.rounds[0].effects[0].uncertain).toBe(true);
        // Round 2 ran fused again, on the new session, and no longer counts as fresh (the lost attempt
        // may have sent it); nor does round 3, whose calls the lost attempt may have started ahead.
        expect(calls.runRound.map((a) => [a.sessionId, a.roundsDelivered, a.fresh])).toEqual([
          ['session-1', 0, true],
          ['session-1', 1, true],
          ['session-2', 1, false],
          ['session-2', 2, false],
        ]);
        expect(calls.makeCall).toHaveLength(0);
        // No call was made twice.
        expect(calls.callProvider).toHaveLength(3);
      },
      { loseSessionAtRound: 2, uncertainAtRound: 1 },
    );
  });

  it('retries a call that met a transient API failure in a fused round per call, after a labelled backoff', async () => {
    const job = jobInput({
      retry: { crm: { maximumAttempts: 3, initialIntervalMs: 1000, maximumIntervalMs: 1000, backoffCoefficient: 1 } },
    });
    let failures = 1;
    const flaky = async (args: CallProviderArgs) => {
      if (failures-- > 0) throw unavailable();
      return { ok: true as const, value: { seq: Number(args.idempotencyKey.split(':')[1]) } };
    };
    await withJob(
      { rounds: [[http('/a'), http('/b')], [http('/c')]], result: 'done' },
      job,
      async (handle, { calls }) => {
        expect(await handle.result()).toMatchObject({ value: 'done', rounds: 2, effects: 3 });
        // The call that failed in the fused round ran again per call; the other was not repeated.
        expect(calls.makeCall.map((c) => c.idempotencyKey.split(':')[1])).toEqual(['0']);
        expect(calls.callProvider.map((c) => c.idempotencyKey.split(':')[1]).sort()).toEqual(['0', '0', '1', '2']);
        expect(calls.advanceSession[0].outcomes).toEqual([
          { ok: true, value: { seq: 0 } },
          { ok: true, value: { seq: 1 } },
        ]);
        const timers = ((await handle.fetchHistory()).events ?? [])
          .filter((e) => e.timerStartedEventAttributes)
          .map((e) => defaultPayloadConverter.fromPayload(e.userMetadata!.summary!));
        expect(timers).toContain('back off (GET → 503), then retry crm: GET /a');
      },
      { callProvider: flaky },
    );
  });

  it('gives the script an ApiError with the last HTTP status once transient failures outlast the retries', async () => {
    const job = jobInput({
      retry: { crm: { maximumAttempts: 3, initialIntervalMs: 1000, maximumIntervalMs: 1000, backoffCoefficient: 1 } },
    });
    await withJob(
      { rounds: [[http('/a')]], result: 'done' },
      job,
      async (handle, { calls }) => {
        await handle.result();
        // The fused attempt counts as the first: two per-call attempts follow, then the script gets the error.
        expect(calls.callProvider).toHaveLength(3);
        expect(calls.advanceSession[0].outcomes).toEqual([
          {
            ok: false,
            error: {
              name: 'ApiError',
              message: expect.stringMatching(/^crm: GET \/a failed after 3 attempt\(s\): /),
              status: 503,
            },
          },
        ]);
      },
      { callProvider: async () => Promise.reject(unavailable()) },
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
      attempts: 10,
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

function unavailable(): ApplicationFailure {
  const details: TransientHttpDetails = { status: 503 };
  return ApplicationFailure.create({
    type: INTERNAL_FAILURES.TransientHttpError,
    message: 'GET → 503',
    details: [details],
  });
}

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

/** Waits in real time (a poll every 50 ms, at most 10 s) until `done()`. */
async function until(done: () => boolean): Promise<void> {
  for (let i = 0; i < 200 && !done(); i++) await new Promise((resolve) => setTimeout(resolve, 50));
  if (!done()) throw new Error('the condition did not hold within 10 s');
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
