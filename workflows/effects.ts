/**
 * Running one round's effects, all at once: API and tool calls as activities (retried by
 * Temporal per the provider's retry settings), sleeps as durable timers, checkpoints as state,
 * approvals as waits for a human (approvals.ts), which also hold calls the approval policy names.
 * Outcomes come back in the order the sandbox asked for them.
 */
import * as wf from '@temporalio/workflow';
import type { SharedActivities } from '../activities/index.ts';
import { idempotencyKey, privacyOwner } from '../core/effects.ts';
import { productError, transientHttpStatus } from '../core/errors.ts';
import type { EffectOutcome, JobInput, PlannedEffect } from '../core/journal.ts';
import type { Approvals } from './approvals.ts';
import type { RunJournal } from './journal.ts';

/**
 * Runs the round's effects in parallel; `firstSeq` is the job's count of effects before this round
 * (each effect's position, which its idempotency key carries). A prefilled effect (agreed with a
 * previous attempt's journal) is delivered without running.
 */
export function runRoundEffects(
  job: JobInput,
  effects: PlannedEffect[],
  firstSeq: number,
  journal: RunJournal,
  approvals: Approvals,
): Promise<EffectOutcome[]> {
  return Promise.all(
    effects.map(async (effect, i) => {
      if (effect.prefilled) return effect.prefilled;
      if (effect.request.kind === 'checkpoint') journal.checkpoint = effect.request.state;
      return runEffect(job, effect, firstSeq + i, approvals);
    }),
  );
}

async function runEffect(
  job: JobInput,
  { request, key, label }: PlannedEffect,
  seq: number,
  approvals: Approvals,
): Promise<EffectOutcome> {
  if (request.kind === 'sleep') {
    await wf.sleep(request.ms, { summary: label });
    return { ok: true };
  }
  if (request.kind === 'checkpoint') return { ok: true };
  if (request.kind === 'approval') return approvals.ask(request);
  // A call the policy does not hold goes on in this same tick: the order of commands stays as before approvals.
  const held = approvals.hold(request, label);
  const refused = held && (await held);
  if (refused) return refused;
  const retry = job.retry[request.provider];
  try {
    const { callProvider } = wf.proxyActivities<SharedActivities>({
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
    return await callProvider({
      request,
      idempotencyKey: idempotencyKey(job.jobId, seq, key),
      privacyOwner: privacyOwner(job),
    });
  } catch (e) {
    if (wf.isCancellation(e)) throw e;
    // Retries are spent: the script gets an ApiError it can catch, with the last HTTP status if there was one.
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
}
