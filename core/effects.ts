/**
 * Small pure helpers about effects, shared by the workflow (activity summaries), the sandbox
 * (replay matching) and the activities. Nothing here may touch Node APIs: it is bundled into
 * workflow code.
 */
import type { EffectRequest, JobInput } from './journal.ts';

/** How journals, divergence messages and the Temporal UI name an effect: `crm: POST /leads/batch`. */
export function effectLabel(request: EffectRequest): string {
  if (request.kind === 'sleep') return `sleep ${request.ms} ms`;
  if (request.kind === 'checkpoint') return 'checkpoint';
  if (request.kind === 'approval')
    return `approval: ${request.question.length > 80 ? `${request.question.slice(0, 80)}…` : request.question}`;
  if (request.kind === 'tool') return `${request.provider}: tool ${request.tool}`;
  return `${request.provider}: ${request.method} ${request.path}`;
}

/**
 * The principal whose vault serves a job started with privacy on (the worker restores the tokens
 * in its requests and tokenizes what the job shows outside); undefined for other jobs.
 */
export function privacyOwner(job: JobInput): string | undefined {
  return job.privacy ? job.owner : undefined;
}

/**
 * JSON with sorted object keys, so equal requests compare equal whatever their key order. An
 * object whose keys are in order already is written as it is, not copied (the same text: a copy
 * would list its keys in that order too).
 */
export function canonicalJson(value: unknown): string {
  return JSON.stringify(value, (_key, v: unknown) => {
    if (v === null || typeof v !== 'object' || Array.isArray(v)) return v;
    const keys = Object.keys(v);
    if (keys.every((key, i) => i === 0 || keys[i - 1] < key)) return v;
    return Object.fromEntries(
      Object.entries(v as Record<string, unknown>).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)),
    );
  });
}

/**
 * Idempotency key of an effect: stable across retries, replays, worker restarts and resumed
 * attempts of one job for the same request at the same position; a different request at that
 * position (new code) gets a different key, so an API never answers it from another call's cache.
 */
export function idempotencyKey(jobId: string, effectSeq: number, requestKey: string): string {
  return `${jobId}:${effectSeq}:${requestKey.slice(0, 16)}`;
}

/** A job reports the Idempotency-Keys of at most this many uncertain calls (it counts them all). */
export const MAX_UNCERTAIN_KEYS = 20;

/** The memo key under which a failed or cancelled job leaves its journal for job_resume. */
export const RESUME_MEMO_KEY = 'durableCodemodeResume';

/** Longest activity summary the Temporal UI gets for a round. */
const MAX_ROUND_LABEL_CHARS = 200;

/** How the Temporal UI names a round's activity: its calls, repeats counted (`crm: POST /leads ×10`). */
export function roundLabel(labels: string[]): string {
  const counts = new Map<string, number>();
  for (const label of labels) counts.set(label, (counts.get(label) ?? 0) + 1);
  const text = [...counts].map(([label, n]) => (n > 1 ? `${label} ×${n}` : label)).join(', ');
  return text.length > MAX_ROUND_LABEL_CHARS ? `${text.slice(0, MAX_ROUND_LABEL_CHARS - 1)}…` : text;
}
