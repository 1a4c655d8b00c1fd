/**
 * How the workflow runs one round of the job (several in batched mode):
 *
 * - Fused, the normal path: one activity on the worker holding the live session makes the round's
 *   calls and delivers their outcomes (activities/rounds.ts); the workflow journals the result in
 *   one workflow task. When the next round asks only for calls, that activity starts them ahead
 *   (activities/ahead.ts) and the next round's activity takes them up; a job cancelled in between
 *   collects them.
 * - A call met a transient API failure: the workflow waits out the backoff, retries those calls as
 *   per-call activities (Temporal's retry policy, visible in the UI), then delivers the round.
 * - The session is gone (worker killed, frozen, restarted): the journal replays in a new session on
 *   any worker, which reaches the same round and runs it fused again (the calls' records answer
 *   those that already landed, so nothing seen is sent again).
 * - A round that sleeps, and every round of a job started by v0.1.0, runs from the workflow
 *   (effects.ts), then is delivered.
 */
import * as wf from '@temporalio/workflow';
import type { SessionActivities, SharedActivities } from '../activities/index.ts';
import { privacyOwner, roundLabel } from '../core/effects.ts';
import { INTERNAL_FAILURES } from '../core/errors.ts';
import type {
  AdvanceResult,
  CallResult,
  JobInput,
  JobState,
  RunRoundArgs,
  RunRoundResult,
  SettledCall,
} from '../core/journal.ts';
import { CALL_HEARTBEAT_TIMEOUT_MS, SESSION_PICKUP_TIMEOUT_MS } from '../core/timeouts.ts';
import { cancelGraceMs, type Engine, maximumAttempts, runRoundEffects } from './effects.ts';
import type { RunJournal } from './journal.ts';
import { replay } from './sessions.ts';

/** A round that ran: the report that started it, the time it ran at, and how each of its effects settled. */
export interface PlayedRound {
  report: AdvanceResult;
  now: number;
  calls: SettledCall[];
}

export interface RoundRun {
  played: PlayedRound[];
  /** The sandbox's next report, when the round was delivered to it already. */
  next?: { report: AdvanceResult; now: number };
  /** `next` comes from replaying the journal in a new session: its report repeats the lost round's (its logs were taken in already). */
  replayed?: true;
}

/** Runs the round of `report` (the job's round `state.rounds + 1`). */
export async function runRound(
  engine: Engine,
  job: JobInput,
  journal: RunJournal,
  report: AdvanceResult,
  now: number,
  state: JobState,
): Promise<RoundRun> {
  const firstSeq = state.effects;
  // A sleep, an approval or a call the approval policy names is for the workflow to wait on.
  const fusable =
    engine.fused &&
    report.effects.every(({ request }) =>
      request.kind === 'http' || request.kind === 'tool'
        ? !engine.approvals.governs(request)
        : request.kind === 'checkpoint',
    );
  if (!fusable)
    return { played: [{ report, now, calls: await runRoundEffects(engine, job, report.effects, firstSeq, journal) }] };

  for (const { request } of report.effects) if (request.kind === 'checkpoint') journal.checkpoint = request.state;
  const batch = batchOf(job, report, firstSeq);
  const options: wf.ActivityOptions = {
    scheduleToStartTimeout: SESSION_PICKUP_TIMEOUT_MS,
    startToCloseTimeout: job.limits.roundTimeoutMs + 10 * 60_000 + (batch?.flush.ms ?? 0),
    heartbeatTimeout: CALL_HEARTBEAT_TIMEOUT_MS,
    retry: { maximumAttempts: 1 },
    cancellationType: wf.ActivityCancellationType.WAIT_CANCELLATION_COMPLETED,
    summary: `${roundLabel(report.effects.map((e) => e.label))}${batch ? ' (batched)' : ''}`,
  };
  const args: RunRoundArgs = {
    sessionId: report.session.id,
    roundsDelivered: state.rounds,
    firstSeq,
    jobAttempt: job.attempt,
    fresh: job.attempt === 1 && firstSeq >= (state.attemptedUpTo ?? 0),
    maximumAttempts: Object.fromEntries(Object.keys(job.retry).map((p) => [p, maximumAttempts(job, p)])),
    cancelGraceMs: cancelGraceMs(job),
    privacyOwner: privacyOwner(job),
    ...(batch ? { batch } : {}),
    ahead: { maxEffectsPerJob: job.limits.maxEffectsPerJob },
  };
  const startedAhead = state.aheadFrom === firstSeq;
  state.aheadFrom = undefined;
  let result: RunRoundResult;
  try {
    result = await runFused(engine, report.session, options, args);
  } catch (e) {
    if (wf.isCancellation(e) && startedAhead) result = await collectAhead(report.session, options, args, e);
    else if (wf.isCancellation(e)) throw e;
    else return lost(e);
  }
  // The calls started ahead are those of the last round's report: after the effects of every round run.
  if (result.ahead)
    state.aheadFrom = [report, ...result.rounds.slice(0, -1).map((r) => r.report)].reduce(
      (seq, r) => seq + r.effects.length,
      firstSeq,
    );
  return settle(engine, job, journal, report, now, firstSeq, result);

  async function lost(e: unknown): Promise<RoundRun> {
    wf.log.info('live session unreachable; replaying the journal in a new session, which runs the round again', {
      reason: (e as Error).message,
    });
    // The lost attempt may have sent the round's calls (batched, later ones too) and started the next
    // round's ahead (at most a round's worth): they must look for its records.
    const reach =
      (batch ? batch.flush.calls + job.limits.maxEffectsPerRound : report.effects.length) +
      job.limits.maxEffectsPerRound;
    state.attemptedUpTo = Math.max(state.attemptedUpTo ?? 0, firstSeq + reach);
    return { played: [], next: { report: await replay(job, journal, state.rounds, now), now }, replayed: true };
  }
}

/**
 * The job was cancelled after a round had started the next one's calls ahead and before that
 * round's activity ran: the holder stops those not sent and reports how each ended, so the
 * cancelled job's journal and status show every call that was sent. Should that fail, the job ends
 * cancelled all the same; the calls' records keep their outcomes for a job_resume.
 */
async function collectAhead(
  session: AdvanceResult['session'],
  options: wf.ActivityOptions,
  args: RunRoundArgs,
  cancellation: unknown,
): Promise<RunRoundResult> {
  try {
    return await wf.CancellationScope.nonCancellable(() =>
      wf
        .proxyActivities<SessionActivities>({
          ...options,
          taskQueue: session.taskQueue,
          summary: `cancelled: collect the calls started ahead (${options.summary})`,
        })
        .runRound({ ...args, collect: true }),
    );
  } catch (e) {
    wf.log.warn('could not collect the calls started ahead of the cancelled round; their records keep their outcomes', {
      reason: (e as Error).message,
    });
    throw cancellation;
  }
}

/**
 * Offered first on the job's own task queue, the round comes straight back to the worker that ran
 * this workflow task (eager activity dispatch: the server skips matching and one write per round).
 * That worker usually holds the session: it opened it (eagerly too) and the job's workflow tasks
 * stick to it. When another worker got the round, it declines before doing anything, and this round
 * and the session's later ones go to the holder's own task queue.
 */
async function runFused(
  engine: Engine,
  session: AdvanceResult['session'],
  options: wf.ActivityOptions,
  args: RunRoundArgs,
): Promise<RunRoundResult> {
  if (engine.eager && !engine.eager.elsewhere.has(session.id)) {
    try {
      return await wf.proxyActivities<SharedActivities>(options).runRoundHere({
        ...args,
        sessionTaskQueue: session.taskQueue,
      });
    } catch (e) {
      const declined =
        e instanceof wf.ActivityFailure &&
        e.cause instanceof wf.ApplicationFailure &&
        e.cause.type === INTERNAL_FAILURES.SessionElsewhere;
      if (!declined) throw e;
      engine.eager.elsewhere.add(session.id);
    }
  }
  return wf.proxyActivities<SessionActivities>({ ...options, taskQueue: session.taskQueue }).runRound(args);
}

/** The fused activity's rounds as played rounds; a round it stopped is settled per call first (or left unsettled when cancelled). */
async function settle(
  engine: Engine,
  job: JobInput,
  journal: RunJournal,
  report: AdvanceResult,
  now: number,
  firstSeq: number,
  result: RunRoundResult,
): Promise<RoundRun> {
  const played: PlayedRound[] = [];
  let at = { report, now };
  let seq = firstSeq;
  for (const round of result.rounds) {
    played.push({ ...at, calls: round.outcomes.map((outcome, i) => withUncertainty(outcome, round.uncertain, i)) });
    seq += at.report.effects.length;
    at = { report: round.report, now: round.now };
  }
  if (!result.stopped) return { played, next: at };
  const { calls, retryAfterMs } = result.stopped;
  const known = calls.map((c) => ('outcome' in c ? c : undefined));
  if (
    !calls.some((c) => 'unsettled' in c && c.unsettled === 'retry') ||
    wf.CancellationScope.current().consideredCancelled
  )
    return { played: [...played, { ...at, calls }] };
  // Transient API failures: back off (a labelled timer), then retry those calls per call with Temporal's policy.
  const failed = at.report.effects.filter((_, i) => !known[i]);
  const backoffMs = Math.max(
    retryAfterMs ?? 0,
    ...failed.map(({ request }) => ('provider' in request ? job.retry[request.provider]?.initialIntervalMs : 0) ?? 0),
  );
  const answer = calls.find((c) => 'failure' in c)?.failure;
  await wf.sleep(backoffMs, {
    summary: `back off${answer ? ` (${answer})` : ''}, then retry ${roundLabel(failed.map((e) => e.label))}`,
  });
  const settled = await runRoundEffects(engine, job, at.report.effects, seq, journal, known);
  return { played: [...played, { ...at, calls: settled }] };
}

function withUncertainty(outcome: CallResult['outcome'], uncertain: number[], i: number): CallResult {
  return uncertain.includes(i) ? { outcome, uncertain: true } : { outcome };
}

/** Batched mode for this round: every call goes to a batched provider; at most the job's remaining effects. */
function batchOf(job: JobInput, report: AdvanceResult, firstSeq: number) {
  // Calls of a provider with an approval policy are for the workflow to hold: never batched past it.
  const providers = (job.batched ?? []).filter((p) => !job.approvals?.rules[p]?.length);
  const calls = report.effects.filter((e) => e.request.kind === 'http' || e.request.kind === 'tool');
  if (providers.length === 0 || calls.length === 0) return undefined;
  if (!calls.every((e) => 'provider' in e.request && providers.includes(e.request.provider))) return undefined;
  const flush = job.batchFlush ?? { calls: 100, ms: 2_000 };
  return { providers, flush: { ...flush, calls: Math.min(flush.calls, job.limits.maxEffectsPerJob - firstSeq) } };
}
