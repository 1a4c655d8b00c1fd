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
import type { DurableScriptInput, JobResult, JobState } from '../core/journal.ts';
import { Approvals } from './approvals.ts';
import { activityFailureError, fail, leaveResumeMemo, timeLimitError } from './end-of-job.ts';
import { newJobState } from './job-state.ts';
import { RunJournal } from './journal.ts';
import { runRounds } from './rounds.ts';

export const jobStateQuery = wf.defineQuery<JobState>('jobState');

export async function durableScript(input: DurableScriptInput): Promise<JobResult> {
  const { job } = input;
  const state = input.carried?.state ?? newJobState(job);
  state.runs++;
  wf.setHandler(jobStateQuery, () => state);
  const approvals = new Approvals(job, state);
  const journal = new RunJournal(input.carried);

  // The job's wall-time limit: when it passes, everything the job waits on is cancelled.
  const deadline = state.startedAt + job.limits.maxJobSeconds * 1000;
  try {
    return await wf.CancellationScope.withTimeout(Math.max(1, deadline - Date.now()), () =>
      runRounds(input, state, journal, approvals),
    );
  } catch (e) {
    if (e instanceof wf.ContinueAsNew) throw e;
    await leaveResumeMemo(journal);
    // Cancelled, but not by job_cancel: the time limit's scope was.
    if (wf.isCancellation(e) && !wf.CancellationScope.current().consideredCancelled) fail(state, timeLimitError(job));
    // A sandbox that could not be opened (e.g. a blob of the journal is missing) ends the job with
    // that reason, not a bare "activity task failed".
    if (e instanceof wf.ActivityFailure && !wf.isCancellation(e)) fail(state, activityFailureError(e));
    throw e;
  }
}
