/**
 * Running a round's effects from the workflow, all at once: API and tool calls as per-call
 * activities, sleeps as durable timers, checkpoints as state, approvals as waits for a human
 * (approvals.ts), which also hold calls the approval policy names. This is the whole round for jobs
 * started by v0.1.0 and for rounds that sleep or wait for a human; for fused rounds (fused.ts) it is
 * the fallback, for calls that met a transient API failure. Outcomes come back in the order the
 * sandbox asked for them.
 */
import * as wf from '@temporalio/workflow';
import type { SharedActivities } from '../activities/index.ts';
import { idempotencyKey, privacyOwner } from '../core/effects.ts';
import { isErrorName, productError, transientHttpStatus } from '../core/errors.ts';
import { CALL_HEARTBEAT_TIMEOUT_MS } from '../core/timeouts.ts';
import type {
  CallResult,
  EffectOutcome,
  HttpEffect,
  JobInput,
  PlannedEffect,
  RetrySettings,
  SettledCall,
  ToolEffect,
  UnsettledDetails,
} from '../core/journal.ts';
import type { Approvals } from './approvals.ts';
import type { RunJournal } from './journal.ts';
import type { JobAttributes } from './search-attributes.ts';

/**
 * How a job's rounds run: as in v0.1.0 (per-call activities counting every failed attempt), or
 * fused, with exactly-once calls and the job's search attributes kept current.
 */
export interface Engine {
  fused: boolean;
  /**
   * Fused rounds are first offered to the worker running the workflow task (fused.ts), except for
   * the sessions in `elsewhere`, whose holder declined a round there.
   */
  eager?: { elsewhere: Set<string> };
  attributes?: JobAttributes;
  /** The job's approvals: the script's questions, and the calls the approval policy holds. */
  approvals: Approvals;
}

/** Defaults for jobs started before a setting existed. */
export const cancelGraceMs = (job: JobInput): number => job.limits.cancelGraceMs ?? 10_000;
export const maximumAttempts = (job: JobInput, provider: string): number =>
  retrySettings(job, provider).maximumAttempts;
/** A provider's retries as the job started with them (a provider added since: one attempt). */
export const retrySettings = (job: JobInput, provider: string): RetrySettings =>
  job.retry[provider] ?? {
    maximumAttempts: 1,
    initialIntervalMs: 500,
    maximumIntervalMs: 30_000,
    backoffCoefficient: 2,
  };

/**
 * Runs the round's effects in parallel; `firstSeq` is the job's count of effects before this round
 * (each effect's position, which its idempotency key carries). A prefilled effect (agreed with a
 * previous attempt's journal) is delivered without running; so is any effect `known` already has.
 * Fused: every call settles before this returns, so a cancelled job knows which calls landed.
 */
export async function runRoundEffects(
  engine: Engine,
  job: JobInput,
  effects: PlannedEffect[],
  firstSeq: number,
  journal: RunJournal,
  known: Array<CallResult | undefined> = [],
): Promise<SettledCall[]> {
  const runs = effects.map(async (effect, i): Promise<CallResult> => {
    const already = known[i] ?? (effect.prefilled && { outcome: effect.prefilled });
    if (already) return already;
    const { request, label } = effect;
    if (request.kind === 'checkpoint') journal.checkpoint = request.state;
    if (request.kind === 'sleep') {
      await wf.sleep(request.ms, { summary: label });
      return { outcome: { ok: true } };
    }
    if (request.kind === 'checkpoint') return { outcome: { ok: true } };
    if (request.kind === 'approval') return { outcome: await engine.approvals.ask(request) };
    // A call the policy does not hold goes on in this same tick: the order of commands stays as before approvals.
    const held = engine.approvals.hold(request, label, effect.shown);
    const refused = held && (await held);
    if (refused) return { outcome: refused };
    const key = idempotencyKey(job.jobId, firstSeq + i, effect.key);
    return engine.fused ? makeCall(job, request, key, label) : { outcome: await callAsV010(job, request, key, label) };
  });
  if (!engine.fused) return Promise.all(runs);
  const settled = await Promise.allSettled(runs);
  return settled.map((s, i) => {
    if (s.status === 'fulfilled') return s.value;
    // A call the cancellation stopped says how it ended; anything else (a cancelled sleep or approval, a failure) ends the round.
    const { kind } = effects[i].request;
    const unsettled = (kind === 'http' || kind === 'tool') && unsettledBy(s.reason);
    if (!unsettled) throw s.reason;
    return { unsettled };
  });
}

/** How a cancelled call activity ended (UnsettledDetails), or undefined if `e` is not its cancellation. */
function unsettledBy(e: unknown): UnsettledDetails['unsettled'] | undefined {
  const cause = e instanceof wf.ActivityFailure ? e.cause : e;
  if (!(cause instanceof wf.CancelledFailure)) return undefined;
  return (cause.details?.[0] as UnsettledDetails | undefined)?.unsettled ?? 'not sent';
}

/**
 * One call as a per-call activity: it retries transient API failures with the provider's backoff
 * until its retry.maximumAttempts (then returns the final ApiError), and infrastructure failures
 * (a lost or frozen worker) without limit. A cancelled job lets it land within the grace period.
 */
async function makeCall(job: JobInput, request: HttpEffect | ToolEffect, key: string, label: string) {
  const { makeCall } = wf.proxyActivities<SharedActivities>({
    startToCloseTimeout: '10 minutes',
    heartbeatTimeout: CALL_HEARTBEAT_TIMEOUT_MS,
    // Infrastructure failures (a lost or frozen worker) are retried at once, without limit; the
    // activity spaces the retries of the API's own failures itself (the provider's backoff).
    retry: { initialInterval: 100, backoffCoefficient: 2, maximumInterval: 2_000, maximumAttempts: Infinity },
    cancellationType: wf.ActivityCancellationType.WAIT_CANCELLATION_COMPLETED,
    summary: label,
  });
  try {
    return await makeCall({
      request,
      idempotencyKey: key,
      jobAttempt: job.attempt,
      retry: retrySettings(job, request.provider),
      cancelGraceMs: cancelGraceMs(job),
      privacyOwner: privacyOwner(job),
    });
  } catch (e) {
    if (wf.isCancellation(e)) throw e;
    // A missing or corrupt blob ends the job under its name; anything else the script can catch.
    const cause = e instanceof wf.ActivityFailure && e.cause instanceof wf.ApplicationFailure ? e.cause : undefined;
    if (isErrorName(cause?.type) && cause.nonRetryable) throw e;
    return { outcome: failedAfterRetries(label, e) };
  }
}

/** The call as v0.1.0 scheduled it (jobs started by that release): every failed attempt counts. */
async function callAsV010(
  job: JobInput,
  request: HttpEffect | ToolEffect,
  key: string,
  label: string,
): Promise<EffectOutcome> {
  const retry = job.retry[request.provider];
  try {
    const { callProvider } = wf.proxyActivities<SharedActivities>({
      startToCloseTimeout: '2 minutes',
      heartbeatTimeout: '5 seconds',
      retry: retry && {
        maximumAttempts: retry.maximumAttempts,
        initialInterval: retry.initialIntervalMs,
        maximumInterval: retry.maximumIntervalMs,
        backoffCoefficient: retry.backoffCoefficient,
      },
      summary: label,
    });
    return await callProvider({ request, idempotencyKey: key, privacyOwner: privacyOwner(job) });
  } catch (e) {
    if (wf.isCancellation(e)) throw e;
    return failedAfterRetries(label, e);
  }
}

/** Retries are spent: the script gets an ApiError it can catch, with the last HTTP status if there was one. */
function failedAfterRetries(label: string, e: unknown): EffectOutcome {
  const cause = e instanceof wf.ActivityFailure && e.cause ? e.cause : (e as Error);
  const status = cause instanceof wf.ApplicationFailure ? transientHttpStatus(cause.details) : undefined;
  return {
    ok: false,
    error: {
      ...productError('ApiError', `${label} failed after retries: ${cause.message}`),
      ...(status ? { status } : {}),
    },
  };
}
