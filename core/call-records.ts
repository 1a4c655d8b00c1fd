/**
 * The records every worker keeps about a job's calls in the shared blob store (named records), so
 * that a write is made again only when nobody ever saw its response (activities/calls.ts):
 *
 * - `calls/<job>/<key>.outcome`: a call's outcome, written as soon as the response arrives and before
 *   the activity reports completion; any later attempt at the same idempotency key returns it.
 * - `calls/<job>/<key>.attempt`: the latest attempt at a call: who sent it (or is about to) and when,
 *   how that ended, and how many failures the API itself returned in this job attempt (infrastructure
 *   failures never count against the provider's retry budget).
 * - `workers/<worker>`: refreshed every second while a worker has calls in flight, so an attempt
 *   that finds an older one unanswered can tell a live worker (wait for its outcome) from a dead or
 *   frozen one.
 * - `ended/<job>`: the job completed (in which attempt) and its call records are gone; a stale
 *   attempt of that job attempt or an earlier one that wakes up later must send nothing (a
 *   job_resume of the completed job, a later attempt, sends as usual).
 *
 * A job's `calls/` folder is deleted when it completes; failed and cancelled jobs keep it, since
 * job_resume needs it.
 */
import { z } from 'zod';
import { EffectOutcome } from './journal.ts';

/** Orders the attempts at one call: the job's attempt first, then when Temporal scheduled the activity attempt. */
export const AttemptToken = z.object({ job: z.number().int(), scheduledAt: z.number() });

export const OutcomeRecord = z.object({
  outcome: EffectOutcome,
  /** The job attempt that recorded it: a failure is reused only within the same attempt. */
  jobAttempt: z.number().int(),
  uncertain: z.literal(true).optional(),
});

export const AttemptRecord = z.object({
  attempt: AttemptToken,
  /** The worker process that made it (see `workers/<worker>`). */
  worker: z.string(),
  /** When it wrote this record (epoch ms, the writer's clock). */
  at: z.number(),
  /**
   * sending: about to send, or sent and waiting for the answer; answered: the API answered with a
   * transient failure (nothing applied, retry freely); no answer: the request may have been
   * applied (connection lost, timed out, aborted); not sent: it stopped before sending.
   */
  state: z.enum(['sending', 'answered', 'no answer', 'not sent']),
  /** Failures the API returned in this job attempt (transient statuses, connection errors, time-outs). */
  apiFailures: z.number().int().nonnegative(),
  lastFailure: z.object({ message: z.string(), status: z.number().int().optional() }).optional(),
});

export const WorkerMark = z.object({ at: z.number() });

/** Absent `jobAttempt`: every attempt is stale. */
export const EndedRecord = z.object({ at: z.number(), jobAttempt: z.number().int().optional() });

export type AttemptToken = z.infer<typeof AttemptToken>;
export type OutcomeRecord = z.infer<typeof OutcomeRecord>;
export type AttemptRecord = z.infer<typeof AttemptRecord>;
export type WorkerMark = z.infer<typeof WorkerMark>;

/** <0 when `a` is older than `b`, 0 when they are the same attempt, >0 when newer. */
export function compareAttempts(a: AttemptToken, b: AttemptToken): number {
  return a.job - b.job || a.scheduledAt - b.scheduledAt;
}

/** Record names accept letters, digits and `._:@=+-`; anything else in a job id is spelled `=hh`. */
function segment(text: string): string {
  return text.replace(/[^A-Za-z0-9._:@+-]/g, (c) =>
    [...new TextEncoder().encode(c)].map((b) => `=${b.toString(16).padStart(2, '0')}`).join(''),
  );
}

export const callRecordNames = {
  folder: (jobId: string) => `calls/${segment(jobId)}/`,
  outcome: (jobId: string, key: string) => `calls/${segment(jobId)}/${segment(key)}.outcome`,
  attempt: (jobId: string, key: string) => `calls/${segment(jobId)}/${segment(key)}.attempt`,
  worker: (worker: string) => `workers/${segment(worker)}`,
  ended: (jobId: string) => `ended/${segment(jobId)}`,
};
