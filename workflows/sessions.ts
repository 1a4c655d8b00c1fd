/**
 * Reaching the sandbox: open a session (any worker, replaying the journal), or advance the live
 * one on the worker that holds it, through that worker's own task queue. When the live session is
 * gone (its worker died, restarted, or dropped it), the round is delivered by replaying the
 * journal in a new session instead.
 */
import * as wf from '@temporalio/workflow';
import type { SessionActivities, SharedActivities } from '../activities/index.ts';
import { privacyOwner } from '../core/effects.ts';
import type { AdvanceResult, EffectOutcome, JobInput, OpenSessionArgs, SessionRef } from '../core/journal.ts';
import { CALL_HEARTBEAT_TIMEOUT_MS, SESSION_PICKUP_TIMEOUT_MS } from '../core/timeouts.ts';
import type { RunJournal } from './journal.ts';

/**
 * Opening a session may replay a long journal: generous overall, but a dead or frozen worker shows
 * within a heartbeat timeout. Retried quickly and often, since most failures are a lost worker; a
 * failure of the job's own (a blob missing) fails at once.
 */
const OPEN_SESSION_OPTIONS: wf.ActivityOptions = {
  startToCloseTimeout: '30 minutes',
  heartbeatTimeout: CALL_HEARTBEAT_TIMEOUT_MS,
  retry: { initialInterval: '200 milliseconds', maximumAttempts: 10 },
};

/** Opens a sandbox for the job on any worker; `summary` names the activity in the Temporal UI. */
export function openSession(summary: string, args: OpenSessionArgs): Promise<AdvanceResult> {
  return wf.proxyActivities<SharedActivities>({ ...OPEN_SESSION_OPTIONS, summary }).openSession(args);
}

/**
 * Lets go of the live session while the job waits for a human (zero sandboxes held): best effort,
 * since a session whose worker is gone is gone anyway; the round after the answer replays.
 */
export function releaseSession(session: SessionRef): void {
  const { closeSession } = wf.proxyActivities<SessionActivities>({
    taskQueue: session.taskQueue,
    scheduleToStartTimeout: SESSION_PICKUP_TIMEOUT_MS,
    startToCloseTimeout: '10 seconds',
    retry: { maximumAttempts: 1 },
    summary: 'release the sandbox while waiting for approval',
  });
  closeSession({ sessionId: session.id }).catch(() => undefined);
}

/** Delivers the round to the live session, or replays the journal in a new one if it is gone. */
export async function advance(
  job: JobInput,
  session: SessionRef,
  journal: RunJournal,
  roundCount: number,
  outcomes: EffectOutcome[],
  now: number,
): Promise<AdvanceResult> {
  const { advanceSession } = wf.proxyActivities<SessionActivities>({
    taskQueue: session.taskQueue,
    scheduleToStartTimeout: SESSION_PICKUP_TIMEOUT_MS,
    startToCloseTimeout: job.limits.roundTimeoutMs + 30_000,
    // The worker dying mid-round shows within this.
    heartbeatTimeout: CALL_HEARTBEAT_TIMEOUT_MS,
    retry: { maximumAttempts: 1 },
    summary: `round ${roundCount + 1}`,
  });
  try {
    return await advanceSession({
      sessionId: session.id,
      roundsDelivered: roundCount - 1,
      outcomes,
      now,
      privacyOwner: privacyOwner(job),
    });
  } catch (e) {
    if (wf.isCancellation(e)) throw e;
    wf.log.info('live session unavailable; replaying the journal in a new session', {
      rounds: roundCount,
      reason: (e as Error).message,
    });
    return await replay(job, journal, roundCount, now);
  }
}

/** Opens a new session that replays the journal's `roundCount` rounds and goes live at time `now`. */
export function replay(job: JobInput, journal: RunJournal, roundCount: number, now: number): Promise<AdvanceResult> {
  return openSession(`replay ${roundCount} rounds`, { job, journal: journal.parts(), now });
}
