/**
 * One `execute` = one chain of runs of this workflow. It owns the job's journal and drives the
 * sandbox round by round (rounds.ts): the sandbox reports the effects the script waits on, the
 * workflow runs them (effects.ts), records the round, and delivers the outcomes back to the live
 * session, or replays the journal in a new one when that is gone (sessions.ts).
 *
 * Long jobs continue as new before history grows large, carrying the journal by reference (blob
 * segments) and the live session along. How a job ends (end-of-job.ts): completed with its result,
 * failed with the error and its summary, or failed or cancelled leaving its journal in a memo so
 * job_resume can start the next attempt from it; past `limits.maxJobSeconds` it fails with
 * JobTimeLimitError.
 *
 * Deterministic code only: no Node APIs, no I/O. Everything else happens in activities. The
 * command sequence is a contract with running jobs: test/unit/replay.test.ts replays the recorded
 * histories of every release.
 */
import * as wf from '@temporalio/workflow';
import type { SharedActivities } from '../activities/index.ts';
import type { DurableScriptInput, JobResult, JobState } from '../core/journal.ts';
import { Approvals } from './approvals.ts';
import type { Engine } from './effects.ts';
import { activityFailureError, fail, leaveResumeMemo, timeLimitError } from './end-of-job.ts';
import { newJobState } from './job-state.ts';
import { RunJournal } from './journal.ts';
import { runRounds } from './rounds.ts';
import { JobAttributes } from './search-attributes.ts';

export const jobStateQuery = wf.defineQuery<JobState>('jobState');

/**
 * Fused rounds, exactly-once calls, search attributes (release 0.2.0). Runs started by 0.1.0 (no
 * marker in their history) keep the rounds they were started with, so they replay; every run
 * started since, continued ones included, has the marker.
 */
export const FUSED_ROUNDS_PATCH = 'fused-rounds';

/**
 * The `DcmPhase` search attribute says `waiting_for_approval` while an approval is pending. Runs
 * recorded before (0.2.0's histories) upserted no phase while they waited, so they replay without it.
 */
export const APPROVAL_PHASE_PATCH = 'approval-phase';

/** Fused rounds offered first to the worker running the workflow task (eager dispatch; fused.ts). */
export const EAGER_ROUNDS_PATCH = 'eager-rounds';

/**
 * A completed job's call records are forgotten in a local activity (release 0.4.0): it writes one
 * record and leaves the deletion running, so it needs no activity task and workflow task of its own
 * (a 3-call job's execute: 3–8 ms less, bench/README.md). Runs recorded before scheduled it as an
 * activity.
 */
export const FORGET_LOCALLY_PATCH = 'forget-calls-locally';

/**
 * Every patch above in one marker (release 0.4.0): a run that has it uses them all. Temporal records
 * each patch as a marker and an upsert of `TemporalChangeVersion` (a visibility write): four per
 * job, three of them in its first workflow task, where one does. Runs recorded before have no such
 * marker and decide each patch by its own, as they were recorded.
 */
export const RELEASE_0_4_PATCH = 'release-0.4';

const FORGET_OPTIONS = { startToCloseTimeout: '1 minute', retry: { maximumAttempts: 5 } } as const;
const { forgetCalls } = wf.proxyActivities<SharedActivities>(FORGET_OPTIONS);
const { forgetCalls: forgetCallsLocally } = wf.proxyLocalActivities<SharedActivities>(FORGET_OPTIONS);

export async function durableScript(input: DurableScriptInput): Promise<JobResult> {
  const { job } = input;
  const state = input.carried?.state ?? newJobState(job);
  state.runs++;
  wf.setHandler(jobStateQuery, () => state);
  const release = wf.patched(RELEASE_0_4_PATCH);
  const patched = (patchId: string) => release || wf.patched(patchId);
  const attributes = patched(FUSED_ROUNDS_PATCH) ? new JobAttributes() : undefined;
  const approvals = new Approvals(job, state, attributes && patched(APPROVAL_PHASE_PATCH) ? attributes : undefined);
  const engine: Engine = attributes
    ? {
        fused: true,
        attributes,
        approvals,
        ...(patched(EAGER_ROUNDS_PATCH) ? { eager: { elsewhere: new Set<string>() } } : {}),
      }
    : { fused: false, approvals };
  const journal = new RunJournal(input.carried);
  engine.attributes?.phase(state, 'running');

  // The job's wall-time limit: when it passes, everything the job waits on is cancelled.
  const deadline = state.startedAt + job.limits.maxJobSeconds * 1000;
  let result: JobResult;
  try {
    result = await withDeadline(Math.max(1, deadline - Date.now()), 'job time limit (limits.maxJobSeconds)', () =>
      runRounds(engine, input, state, journal),
    );
  } catch (e) {
    if (e instanceof wf.ContinueAsNew) throw e;
    const timedOut = wf.isCancellation(e) && !wf.CancellationScope.current().consideredCancelled;
    await leaveResumeMemo(journal, state);
    if (wf.isCancellation(e) && !timedOut) engine.attributes?.phase(state, 'cancelled');
    // Cancelled, but not by a cancel: the time limit's scope was.
    if (timedOut) fail(state, timeLimitError(job), engine.attributes);
    // A sandbox that could not be opened (e.g. a blob of the journal is missing) ends the job with
    // that reason, not a bare "activity task failed".
    if (e instanceof wf.ActivityFailure && !wf.isCancellation(e))
      fail(state, activityFailureError(e), engine.attributes);
    throw e;
  }
  // A completed job needs its call records no more (a failed or cancelled one keeps them for job_resume).
  if (engine.fused && state.effects > 0) {
    try {
      await (patched(FORGET_LOCALLY_PATCH) ? forgetCallsLocally : forgetCalls)(job.jobId, job.attempt);
    } catch (e) {
      wf.log.warn('could not delete the call records of a completed job', { reason: (e as Error).message });
    }
  }
  engine.attributes?.phase(state, 'completed');
  return result;
}

/**
 * Runs `fn` in a scope cancelled after `ms`, like CancellationScope.withTimeout (same commands), with
 * a summary on its timer so the Temporal UI does not show a bare "Timer 7 days".
 */
async function withDeadline<T>(ms: number, summary: string, fn: () => Promise<T>): Promise<T> {
  const scope = new wf.CancellationScope();
  return scope.run(async () => {
    const timer = new wf.CancellationScope();
    timer
      .run(() => wf.sleep(ms, { summary }))
      .then(
        () => scope.cancel(),
        () => undefined, // the job ended first
      );
    try {
      return await fn();
    } finally {
      if (!timer.consideredCancelled) timer.cancel();
    }
  });
}
