/**
 * Small pure helpers about effects, shared by the workflow (activity summaries), the sandbox
 * (replay matching) and the activities. Nothing here may touch Node APIs: it is bundled into
 * workflow code.
 */
import type { EffectRequest } from './journal.ts';

/** A one-line label for the Temporal UI, e.g. `crm: POST /leads/batch`. */
export function effectSummary(request: EffectRequest): string {
  if (request.kind === 'sleep') return `sleep ${request.ms} ms`;
  return `${request.provider}: ${request.method} ${request.path}`;
}

/** JSON with sorted object keys, so equal requests compare equal whatever their key order. */
export function canonicalJson(value: unknown): string {
  return JSON.stringify(value, (_key, v: unknown) => {
    if (v === null || typeof v !== 'object' || Array.isArray(v)) return v;
    return Object.fromEntries(Object.entries(v as Record<string, unknown>).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)));
  });
}

/** Idempotency key of an effect: stable across retries, replays and worker restarts of one job. */
export function idempotencyKey(jobId: string, effectSeq: number): string {
  return `${jobId}:${effectSeq}`;
}
