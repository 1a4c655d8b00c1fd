/**
 * How a run of the workflow ends, other than continuing as new: the job completes with its
 * result, or fails with an ApplicationFailure whose type is the error's name and whose details
 * (FailureDetails, read back by the job service) carry the error and the job's summary. A failed
 * or cancelled job first leaves its journal in a memo for job_resume.
 */
import * as wf from '@temporalio/workflow';
import { RESUME_MEMO_KEY } from '../core/effects.ts';
import { type CataloguedError, isErrorName, productError } from '../core/errors.ts';
import { jobSummary } from '../core/job-summary.ts';
import type { FailureDetails, JobInput, JobResult, JobState, ResumeMemo, ScriptErrorInfo } from '../core/journal.ts';
import type { RunJournal } from './journal.ts';
import type { JobAttributes } from './search-attributes.ts';

export function completed(state: JobState, value: unknown): JobResult {
  state.status = 'completed';
  return { value, ...jobSummary(state) };
}

/** Ends the job as failed: with the script's own error, or a catalogued one. */
export function fail(state: JobState, error: ScriptErrorInfo, attributes?: JobAttributes): never {
  state.status = 'failed';
  attributes?.phase(state, 'failed');
  const where = error.line !== undefined ? ` (script line ${error.line}, column ${error.column})` : '';
  const details: FailureDetails = { error, ...jobSummary(state) };
  throw wf.ApplicationFailure.create({
    type: error.name,
    message: `${error.name}: ${error.message}${where}`,
    nonRetryable: true,
    details: [details],
  });
}

/**
 * Saves this run's rounds and leaves the journal (and the last checkpoint) in the memo, even when
 * cancelled, with the job's summary and the calls a cancellation caught in flight (the job tool's status of a
 * cancelled job shows them).
 */
export async function leaveResumeMemo(journal: RunJournal, state: JobState): Promise<void> {
  await wf.CancellationScope.nonCancellable(async () => {
    const memo: ResumeMemo = {
      journal: await journal.saveIfAny(),
      checkpoint: journal.checkpoint,
      summary: jobSummary(state),
      ...(state.inFlight ? { inFlight: state.inFlight } : {}),
    };
    wf.upsertMemo({ [RESUME_MEMO_KEY]: memo });
  });
}

export function timeLimitError(job: JobInput): CataloguedError {
  return productError(
    'JobTimeLimitError',
    `The job ran longer than its limit of ${job.limits.maxJobSeconds} s (limits.maxJobSeconds), so what it was waiting on was cancelled. Resume it with job_resume to continue from its journal, or split the work into smaller jobs.`,
  );
}

/**
 * An activity of the job's own machinery failed for good (opening a sandbox, saving the journal).
 * A catalogued cause keeps its name (a missing blob is a BlobMissingError); anything else is an
 * ActivityError with the cause's message.
 */
export function activityFailureError(e: wf.ActivityFailure): CataloguedError {
  const cause = e.cause instanceof wf.ApplicationFailure ? e.cause : undefined;
  return productError(isErrorName(cause?.type) ? cause.type : 'ActivityError', cause?.message ?? e.message);
}

export function effectLimitError(job: JobInput): CataloguedError {
  return productError(
    'EffectLimitError',
    `The job reached its limit of ${job.limits.maxEffectsPerJob} API calls/sleeps. Split the work into several jobs, or raise limits.maxEffectsPerJob.`,
  );
}
