/**
 * One `execute` = one run of this workflow. It owns the job's journal and drives the sandbox round
 * by round: the sandbox reports the effects the script waits on, the workflow runs them (API calls
 * as activities, sleeps as durable timers) in parallel, records the round, and delivers the
 * outcomes back. The sandbox stays live on one worker between rounds; when that worker is gone,
 * the next worker replays the journal in a fresh sandbox, so no completed call is repeated.
 *
 * Deterministic code only: no Node APIs, no I/O. Everything else happens in activities.
 */
import * as wf from '@temporalio/workflow';
import type { Activities } from '../activities/index.ts';
import { effectSummary, idempotencyKey } from '../core/effects.ts';
import type { AdvanceResult, EffectOutcome, EffectRequest, JobInput, JobResult, JobState, Round, SessionRef } from '../core/journal.ts';

export const jobStateQuery = wf.defineQuery<JobState>('jobState');

/** Lines of the script's console kept in workflow state (and so in query answers and results). */
const RECENT_LOG_LINES = 50;

/** How long a live session's worker may take to pick up the next round before the job replays elsewhere. */
const SESSION_PICKUP_TIMEOUT = '5 seconds';

/** Opening a session may replay a long journal: generous overall, but a dead worker shows within a heartbeat. */
const OPEN_SESSION_OPTIONS: wf.ActivityOptions = {
  startToCloseTimeout: '30 minutes',
  heartbeatTimeout: '30 seconds',
  retry: { initialInterval: '1 second', maximumAttempts: 5 },
};

const API_CALL_OPTIONS: wf.ActivityOptions = {
  startToCloseTimeout: '2 minutes',
  heartbeatTimeout: '10 seconds',
  retry: { initialInterval: '500 milliseconds', backoffCoefficient: 2, maximumInterval: '30 seconds', maximumAttempts: 8 },
};

export async function durableScript(job: JobInput): Promise<JobResult> {
  const state: JobState = { status: 'running', progress: null, logs: [], logCount: 0, rounds: 0, effects: 0, startedAt: Date.now() };
  wf.setHandler(jobStateQuery, () => state);

  const rounds: Round[] = [];
  let runStartedAt = Date.now();
  let report = await openSessionActivity('start script').openSession({ job, rounds, now: runStartedAt });

  for (;;) {
    absorb(state, report);
    const { outcome } = report;
    if (outcome?.kind === 'returned') {
      state.status = 'completed';
      return { value: outcome.value, progress: state.progress, logs: state.logs, logCount: state.logCount, rounds: state.rounds, effects: state.effects };
    }
    if (outcome?.kind === 'threw') fail(state, outcome.error);
    if (state.effects + report.effects.length > job.limits.maxEffectsPerJob) {
      fail(state, {
        name: 'EffectLimitError',
        message: `The job reached its limit of ${job.limits.maxEffectsPerJob} API calls/sleeps. Split the work into several jobs, or raise limits.maxEffectsPerJob.`,
      });
    }

    const firstSeq = state.effects;
    const outcomes = await Promise.all(report.effects.map((request, i) => runEffect(job.jobId, request, firstSeq + i)));
    state.effects += outcomes.length;
    state.rounds++;
    rounds.push({ now: runStartedAt, steps: report.steps, effects: report.effects.map((request, i) => ({ request, outcome: outcomes[i]! })) });

    runStartedAt = Date.now();
    report = await advance(job, report.session, rounds, outcomes, runStartedAt);
  }
}

/** Delivers the round to the live session, or replays the journal in a new one if it is gone. */
async function advance(job: JobInput, session: SessionRef, rounds: Round[], outcomes: EffectOutcome[], now: number): Promise<AdvanceResult> {
  const { advanceSession } = wf.proxyActivities<Activities>({
    taskQueue: session.taskQueue,
    scheduleToStartTimeout: SESSION_PICKUP_TIMEOUT,
    startToCloseTimeout: job.limits.roundTimeoutMs + 30_000,
    retry: { maximumAttempts: 1 },
    summary: `round ${rounds.length + 1}`,
  });
  try {
    return await advanceSession({ sessionId: session.id, roundsDelivered: rounds.length - 1, outcomes, now });
  } catch (e) {
    if (wf.isCancellation(e)) throw e;
    wf.log.info('live session unavailable; replaying the journal in a new session', { rounds: rounds.length, reason: (e as Error).message });
    return await openSessionActivity(`replay ${rounds.length} rounds`).openSession({ job, rounds, now });
  }
}

function openSessionActivity(summary: string) {
  return wf.proxyActivities<Activities>({ ...OPEN_SESSION_OPTIONS, summary });
}

async function runEffect(jobId: string, request: EffectRequest, seq: number): Promise<EffectOutcome> {
  if (request.kind === 'sleep') {
    await wf.sleep(request.ms);
    return { ok: true };
  }
  const summary = effectSummary(request);
  try {
    const { callProvider } = wf.proxyActivities<Activities>({ ...API_CALL_OPTIONS, summary });
    return await callProvider({ request, idempotencyKey: idempotencyKey(jobId, seq) });
  } catch (e) {
    if (wf.isCancellation(e)) throw e;
    const cause = e instanceof wf.ActivityFailure && e.cause ? e.cause : (e as Error);
    const status = cause instanceof wf.ApplicationFailure ? (cause.details?.[0] as { status?: number } | undefined)?.status : undefined;
    return { ok: false, error: { name: 'ApiError', message: `${summary} failed after retries: ${cause.message}`, ...(status ? { status } : {}) } };
  }
}

function absorb(state: JobState, report: AdvanceResult): void {
  if (report.logs.length > 0 || report.droppedLogs > 0) {
    const lines = report.droppedLogs > 0 ? [...report.logs, `[${report.droppedLogs} log line(s) dropped: log limit reached]`] : report.logs;
    state.logCount += lines.length;
    state.logs = [...state.logs, ...lines].slice(-RECENT_LOG_LINES);
  }
  if (report.progress) {
    state.progress = report.progress;
    const { done, total, message } = report.progress;
    wf.setCurrentDetails(`**Progress:** ${done}${total !== null ? ` / ${total}` : ''}${message ? ` — ${message}` : ''}`);
  }
}

function fail(state: JobState, error: { name: string; message: string; stack?: string; line?: number; column?: number }): never {
  state.status = 'failed';
  const where = error.line !== undefined ? ` (script line ${error.line}, column ${error.column})` : '';
  throw wf.ApplicationFailure.create({
    type: error.name,
    message: `${error.name}: ${error.message}${where}`,
    nonRetryable: true,
    details: [{ error, logs: state.logs, logCount: state.logCount, progress: state.progress, rounds: state.rounds, effects: state.effects }],
  });
}
