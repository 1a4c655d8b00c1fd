/**
 * One `execute` = one chain of runs of this workflow. It owns the job's journal and drives the
 * sandbox round by round: the sandbox reports the effects the script waits on, the workflow runs
 * them (API calls as activities, sleeps as durable timers, checkpoints as state) in parallel,
 * records the round, and delivers the outcomes back. The sandbox stays live on one worker between
 * rounds; when that worker is gone, the next worker replays the journal in a fresh sandbox, so no
 * completed call is repeated.
 *
 * Long jobs continue as new before history grows large, carrying the journal by reference (blob
 * segments) and the live session along. A failed or cancelled job leaves its journal in a memo, so
 * job_resume can start the next attempt from it.
 *
 * Deterministic code only: no Node APIs, no I/O. Everything else happens in activities.
 */
import * as wf from '@temporalio/workflow';
import type { Activities } from '../activities/index.ts';
import { idempotencyKey, RESUME_MEMO_KEY } from '../core/effects.ts';
import type {
  AdvanceResult,
  BlobRef,
  DurableScriptInput,
  EffectOutcome,
  JobInput,
  JobResult,
  JobState,
  Json,
  PlannedEffect,
  Round,
  SessionRef,
} from '../core/journal.ts';

export const jobStateQuery = wf.defineQuery<JobState>('jobState');

/** Lines of the script's console kept in workflow state (and so in query answers and results). */
const RECENT_LOG_LINES = 50;

/** How long a live session's worker may take to pick up the next round before the job replays elsewhere. */
const SESSION_PICKUP_TIMEOUT = '5 seconds';

/** This run's journal is carried to the next run by reference once it holds this much. */
const MAX_INLINE_JOURNAL_BYTES = 1024 * 1024;
/** Continue as new well before Temporal's 50 MiB history limit. */
const MAX_HISTORY_BYTES = 16 * 1024 * 1024;

/** Opening a session may replay a long journal: generous overall, but a dead worker shows within a heartbeat. */
const OPEN_SESSION_OPTIONS: wf.ActivityOptions = {
  startToCloseTimeout: '30 minutes',
  heartbeatTimeout: '10 seconds',
  retry: { initialInterval: '1 second', maximumAttempts: 5 },
};

const { saveJournal } = wf.proxyActivities<Activities>({
  startToCloseTimeout: '2 minutes',
  retry: { maximumAttempts: 10 },
});

export async function durableScript(input: DurableScriptInput): Promise<JobResult> {
  const { job } = input;
  const state: JobState = input.carried?.state ?? {
    status: 'running',
    progress: null,
    logs: [],
    logCount: 0,
    rounds: 0,
    effects: 0,
    startedAt: Date.now(),
    runs: 0,
    attempt: job.attempt,
    divergence: null,
  };
  state.runs++;
  wf.setHandler(jobStateQuery, () => state);

  /** The attempt's journal: earlier runs' rounds by reference, this run's inline. */
  let segments: BlobRef[] = input.carried?.journal ?? [];
  const rounds: Round[] = [];
  let inlineBytes = 0;
  let checkpoint: Json | undefined = input.carried?.checkpoint;

  // The job's wall-time limit: when it passes, everything the job waits on is cancelled.
  const deadline = state.startedAt + job.limits.maxJobSeconds * 1000;
  try {
    return await wf.CancellationScope.withTimeout(Math.max(1, deadline - Date.now()), async () => {
      let runStartedAt: number;
      let report: AdvanceResult;
      if (input.carried) {
        const { session, outcomes, now } = input.carried.pending;
        runStartedAt = now;
        report = await advance(job, session, segments, rounds, state.rounds, outcomes, now);
      } else {
        runStartedAt = Date.now();
        const summary = input.previous ? `resume attempt ${job.attempt}: replay the previous journal` : 'start script';
        report = await openSessionActivity(summary).openSession({
          job,
          journal: { segments, rounds },
          now: runStartedAt,
          previous: input.previous,
        });
      }

      for (;;) {
        if (report.adoption) {
          // A resumed attempt starts from the previous journal, as far as the new code agreed with it.
          segments = report.adoption.journal;
          state.rounds = report.adoption.rounds;
          state.effects = report.adoption.effects;
          state.divergence = report.adoption.divergence;
        }
        absorb(state, report);
        const { outcome } = report;
        if (outcome?.kind === 'returned') {
          state.status = 'completed';
          const { progress, logs, logCount, rounds: roundCount, effects, runs, attempt, divergence } = state;
          return {
            value: outcome.value,
            progress,
            logs,
            logCount,
            rounds: roundCount,
            effects,
            runs,
            attempt,
            divergence,
          };
        }
        if (outcome?.kind === 'threw') fail(state, outcome.error);
        if (state.effects + report.effects.length > job.limits.maxEffectsPerJob) {
          fail(state, {
            name: 'EffectLimitError',
            message: `The job reached its limit of ${job.limits.maxEffectsPerJob} API calls/sleeps. Split the work into several jobs, or raise limits.maxEffectsPerJob.`,
          });
        }

        const firstSeq = state.effects;
        const outcomes = await Promise.all(
          report.effects.map(async (effect, i) => {
            if (effect.prefilled) return effect.prefilled;
            if (effect.request.kind === 'checkpoint') checkpoint = effect.request.state;
            return runEffect(job, effect, firstSeq + i);
          }),
        );
        const round: Round = {
          now: runStartedAt,
          steps: report.steps,
          effects: report.effects.map(({ key, label }, i) => ({ key, label, outcome: outcomes[i] })),
        };
        rounds.push(round);
        inlineBytes += JSON.stringify(round).length;
        state.effects += outcomes.length;
        state.rounds++;
        runStartedAt = Date.now();

        if (shouldContinueAsNew(job, inlineBytes)) {
          const carried = {
            journal: [...segments, await saveJournal(rounds)],
            state,
            checkpoint,
            pending: { session: report.session, outcomes, now: runStartedAt },
          };
          return await wf.continueAsNew<typeof durableScript>({ job, carried });
        }
        report = await advance(job, report.session, segments, rounds, state.rounds, outcomes, runStartedAt);
      }
    });
  } catch (e) {
    if (!(e instanceof wf.ContinueAsNew)) {
      // Leave the journal behind for job_resume, even when cancelled.
      await wf.CancellationScope.nonCancellable(async () => {
        const journal = rounds.length > 0 ? [...segments, await saveJournal(rounds)] : segments;
        wf.upsertMemo({ [RESUME_MEMO_KEY]: { journal, checkpoint } });
      });
    }
    // Cancelled, but not by job_cancel: the time limit's scope was.
    if (wf.isCancellation(e) && !wf.CancellationScope.current().consideredCancelled) {
      fail(state, {
        name: 'JobTimeLimitError',
        message: `The job ran longer than its limit of ${job.limits.maxJobSeconds} s (limits.maxJobSeconds), so what it was waiting on was cancelled. Resume it with job_resume to continue from its journal, or split the work into smaller jobs.`,
      });
    }
    // A sandbox that could not be opened (e.g. a blob of the journal is missing) ends the job with
    // that reason, not a bare "activity task failed".
    if (e instanceof wf.ActivityFailure && !wf.isCancellation(e)) {
      const cause = e.cause instanceof wf.ApplicationFailure ? e.cause : undefined;
      fail(state, { name: cause?.type ?? 'ActivityError', message: cause?.message ?? e.message });
    }
    throw e;
  }
}

function shouldContinueAsNew(job: JobInput, inlineBytes: number): boolean {
  const info = wf.workflowInfo();
  return (
    info.continueAsNewSuggested ||
    info.historyLength > job.maxEventsPerRun ||
    info.historySize > MAX_HISTORY_BYTES ||
    inlineBytes > MAX_INLINE_JOURNAL_BYTES
  );
}

/** Delivers the round to the live session, or replays the journal in a new one if it is gone. */
async function advance(
  job: JobInput,
  session: SessionRef,
  segments: BlobRef[],
  rounds: Round[],
  roundCount: number,
  outcomes: EffectOutcome[],
  now: number,
): Promise<AdvanceResult> {
  const { advanceSession } = wf.proxyActivities<Activities>({
    taskQueue: session.taskQueue,
    scheduleToStartTimeout: SESSION_PICKUP_TIMEOUT,
    startToCloseTimeout: job.limits.roundTimeoutMs + 30_000,
    // The worker dying mid-round shows within this (the activity heartbeats every 2 s).
    heartbeatTimeout: '5 seconds',
    retry: { maximumAttempts: 1 },
    summary: `round ${roundCount + 1}`,
  });
  try {
    return await advanceSession({ sessionId: session.id, roundsDelivered: roundCount - 1, outcomes, now });
  } catch (e) {
    if (wf.isCancellation(e)) throw e;
    wf.log.info('live session unavailable; replaying the journal in a new session', {
      rounds: roundCount,
      reason: (e as Error).message,
    });
    return await openSessionActivity(`replay ${roundCount} rounds`).openSession({
      job,
      journal: { segments, rounds },
      now,
    });
  }
}

function openSessionActivity(summary: string) {
  return wf.proxyActivities<Activities>({ ...OPEN_SESSION_OPTIONS, summary });
}

async function runEffect(job: JobInput, { request, key, label }: PlannedEffect, seq: number): Promise<EffectOutcome> {
  if (request.kind === 'sleep') {
    await wf.sleep(request.ms, { summary: label });
    return { ok: true };
  }
  if (request.kind === 'checkpoint') return { ok: true };
  const retry = job.retry[request.provider];
  try {
    const { callProvider } = wf.proxyActivities<Activities>({
      startToCloseTimeout: '2 minutes',
      // A dead worker's in-flight call is retried elsewhere after this (the activity heartbeats every 2 s).
      heartbeatTimeout: '5 seconds',
      retry: retry && {
        maximumAttempts: retry.maximumAttempts,
        initialInterval: retry.initialIntervalMs,
        maximumInterval: retry.maximumIntervalMs,
        backoffCoefficient: retry.backoffCoefficient,
      },
      summary: label,
    });
    return await callProvider({ request, idempotencyKey: idempotencyKey(job.jobId, seq, key) });
  } catch (e) {
    if (wf.isCancellation(e)) throw e;
    const cause = e instanceof wf.ActivityFailure && e.cause ? e.cause : (e as Error);
    const status =
      cause instanceof wf.ApplicationFailure
        ? (cause.details?.[0] as { status?: number } | undefined)?.status
        : undefined;
    return {
      ok: false,
      error: {
        name: 'ApiError',
        message: `${label} failed after retries: ${cause.message}`,
        ...(status ? { status } : {}),
      },
    };
  }
}

function absorb(state: JobState, report: AdvanceResult): void {
  if (report.logs.length > 0 || report.droppedLogs > 0) {
    const lines =
      report.droppedLogs > 0
        ? [...report.logs, `[${report.droppedLogs} log line(s) dropped: log limit reached]`]
        : report.logs;
    state.logCount += lines.length;
    state.logs = [...state.logs, ...lines].slice(-RECENT_LOG_LINES);
  }
  if (report.progress) {
    state.progress = report.progress;
    const { done, total, message } = report.progress;
    wf.setCurrentDetails(
      `**Progress:** ${done}${total !== null ? ` / ${total}` : ''}${message ? ` — ${message}` : ''}`,
    );
  }
}

function fail(
  state: JobState,
  error: { name: string; message: string; stack?: string; line?: number; column?: number },
): never {
  state.status = 'failed';
  const where = error.line !== undefined ? ` (script line ${error.line}, column ${error.column})` : '';
  const { logs, logCount, progress, rounds, effects, runs, attempt, divergence } = state;
  throw wf.ApplicationFailure.create({
    type: error.name,
    message: `${error.name}: ${error.message}${where}`,
    nonRetryable: true,
    details: [{ error, logs, logCount, progress, rounds, effects, runs, attempt, divergence }],
  });
}
