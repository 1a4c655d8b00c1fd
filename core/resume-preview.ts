/**
 * A dry run of job_resume (issue 15): what the next attempt would do, answered before anything is
 * written. The worker replays the previous attempt's journal against the (corrected) script, sends
 * the reads (GET, HEAD) the script makes past it, and stops at the first round that would write, or
 * where each() starts, which counts its items against the previous attempts' ledger without running fn.
 */
import { z } from 'zod';
import { BlobRef, type JobInput, ScriptErrorInfo } from './journal.ts';
import { EachPlan } from './ledger.ts';

/** Calls of one round listed in a preview; the rest are counted. */
export const PREVIEW_CALLS_LISTED = 20;

/** Rounds of reads a preview sends past the journal before it stops (a script that reads in a loop). */
export const PREVIEW_MAX_READ_ROUNDS = 20;

/** What the preview activity takes: the next attempt as job_resume would start it. */
export interface PreviewResumeArgs {
  job: JobInput;
  /** The previous attempt's journal (a failed or cancelled job's memo); none for a completed job. */
  previous?: BlobRef[];
  /** Time handed to the script once it is past the journal. */
  now: number;
}

/** A round past the journal: reads the preview sent, or the first round that would write (not sent). */
export const PreviewRound = z.object({
  /** The job's round number, counting the journal's. */
  round: z.number().int().positive(),
  /** Its calls as `provider: METHOD /path` (or `provider: tool NAME`), the first PREVIEW_CALLS_LISTED. */
  calls: z.array(z.string()),
  /** Calls past those listed. */
  more: z.number().int().positive().optional(),
  /** true: reads only, sent during the preview; false: where the resume would start writing. */
  sent: z.boolean(),
});

export const ResumePreview = z.object({
  /** Rounds the previous attempt journaled (a completed job keeps none: its next attempt runs from the start). */
  journal_rounds: z.number().int().nonnegative(),
  /** Of those, the rounds the script agrees with: they replay, nothing is sent. */
  replay_rounds: z.number().int().nonnegative(),
  /** Where the script stops agreeing with the journal, or null when it agrees with all of it. */
  divergence: z.string().nullable(),
  /** Rounds past the journal, in order: reads sent during the preview, then the first that would write. */
  live: z.array(PreviewRound),
  /** Each each() the script reached: items it would skip (done before), retry (failed or uncertain before) and run for the first time. */
  each: z.array(EachPlan),
  /** The script ended within the preview: returned, or threw this error. */
  ended: z.union([z.literal('returned'), ScriptErrorInfo]).optional(),
  /** Reads (GET, HEAD) the preview sent to compute the above; nothing else was sent. */
  reads_sent: z.number().int().nonnegative(),
});

export type PreviewRound = z.infer<typeof PreviewRound>;
export type ResumePreview = z.infer<typeof ResumePreview>;
