/**
 * The durable model's vocabulary: what a script asks the outside world for (effects), what came
 * back (outcomes), and the journal of rounds that lets a fresh sandbox replay a job exactly.
 *
 * These schemas are the one definition of every value that crosses a process boundary (sandbox →
 * host, activity ↔ workflow). Workflow code imports only the inferred types, so zod stays out of
 * the workflow bundle.
 */
import { z } from 'zod';

const json = z.json();

export const HttpMethod = z.enum(['GET', 'POST', 'PUT', 'PATCH', 'DELETE', 'HEAD']);

const QueryValue = z.union([z.string(), z.number(), z.boolean(), z.array(z.union([z.string(), z.number(), z.boolean()]))]);

/** An API call through a provider client: `crm.request({ method, path, query, body })`. */
export const HttpEffect = z.object({
  kind: z.literal('http'),
  provider: z.string(),
  method: HttpMethod,
  path: z.string(),
  query: z.record(z.string(), QueryValue).optional(),
  body: json.optional(),
});

/** A durable timer: `sleep(ms)`. */
export const SleepEffect = z.object({ kind: z.literal('sleep'), ms: z.number().int().nonnegative() });

export const EffectRequest = z.discriminatedUnion('kind', [HttpEffect, SleepEffect]);

export const ScriptErrorInfo = z.object({
  name: z.string(),
  message: z.string(),
  stack: z.string().optional(),
  /** Position in the submitted script (1-based), when the error points into it. */
  line: z.number().int().optional(),
  column: z.number().int().optional(),
});

/** What an effect produced. API errors carry the HTTP status and parsed body so scripts can branch on them. */
export const EffectOutcome = z.discriminatedUnion('ok', [
  z.object({ ok: z.literal(true), value: json.optional() }),
  z.object({
    ok: z.literal(false),
    error: z.object({ name: z.string(), message: z.string(), status: z.number().int().optional(), body: json.optional() }),
  }),
]);

/** A `step(name, fn)` result, saved so replay returns it without running `fn` again. */
export const StepRecord = z.object({ index: z.number().int().nonnegative(), name: z.string(), value: json });

export const Progress = z.object({ done: z.number(), total: z.number().nullable(), message: z.string().nullable() });

/**
 * One round: the sandbox ran (at time `now`) until every pending promise waited on an effect;
 * those effects ran in parallel and their outcomes were delivered back in this order.
 */
export const Round = z.object({
  now: z.number(),
  steps: z.array(StepRecord),
  effects: z.array(z.object({ request: EffectRequest, outcome: EffectOutcome })),
});

/** How a script ended, as reported by the sandbox. */
export const ScriptOutcome = z.discriminatedUnion('kind', [
  z.object({ kind: z.literal('returned'), value: json }),
  z.object({ kind: z.literal('threw'), error: ScriptErrorInfo }),
]);

/** What one run of the sandbox to quiescence reports. Untrusted until parsed: the guest produced it. */
export const RoundReport = z.object({
  effects: z.array(EffectRequest),
  steps: z.array(StepRecord),
  logs: z.array(z.string()),
  droppedLogs: z.number().int().nonnegative(),
  progress: Progress.nullable(),
  outcome: ScriptOutcome.nullable(),
});

export const SandboxLimits = z.object({
  memoryMb: z.number().int().min(8).default(128),
  roundTimeoutMs: z.number().int().positive().default(10_000),
  maxEffectsPerRound: z.number().int().positive().max(1_000).default(500),
  maxEffectsPerJob: z.number().int().positive().default(100_000),
  maxLogBytes: z.number().int().positive().default(64 * 1024),
  maxResultBytes: z.number().int().positive().default(1024 * 1024),
});

export const JobInput = z.object({
  jobId: z.string(),
  code: z.string(),
  input: json.optional(),
  limits: SandboxLimits,
});

export const SessionRef = z.object({ id: z.string(), taskQueue: z.string() });

/** The reply of the activities that advance a sandbox session by one round. */
export const AdvanceResult = RoundReport.extend({ session: SessionRef });

export type Json = z.infer<typeof json>;
export type HttpMethod = z.infer<typeof HttpMethod>;
export type HttpEffect = z.infer<typeof HttpEffect>;
export type SleepEffect = z.infer<typeof SleepEffect>;
export type EffectRequest = z.infer<typeof EffectRequest>;
export type EffectOutcome = z.infer<typeof EffectOutcome>;
export type ScriptErrorInfo = z.infer<typeof ScriptErrorInfo>;
export type StepRecord = z.infer<typeof StepRecord>;
export type Progress = z.infer<typeof Progress>;
export type Round = z.infer<typeof Round>;
export type ScriptOutcome = z.infer<typeof ScriptOutcome>;
export type RoundReport = z.infer<typeof RoundReport>;
export type SandboxLimits = z.infer<typeof SandboxLimits>;
export type JobInput = z.infer<typeof JobInput>;
export type SessionRef = z.infer<typeof SessionRef>;
export type AdvanceResult = z.infer<typeof AdvanceResult>;

/** Arguments of the activities that drive the sandbox. */
export interface OpenSessionArgs {
  job: JobInput;
  /** Every completed round so far; replayed before the session goes live. */
  rounds: Round[];
  /** Time to hand the script when it goes live. */
  now: number;
}

export interface AdvanceSessionArgs {
  sessionId: string;
  /** How many rounds the session must already have delivered; anything else means it is stale. */
  roundsDelivered: number;
  outcomes: EffectOutcome[];
  now: number;
}

/** The workflow's live view, served by the `jobState` query. */
export interface JobState {
  status: 'running' | 'completed' | 'failed';
  progress: Progress | null;
  logs: string[];
  logCount: number;
  rounds: number;
  effects: number;
  startedAt: number;
}

/** What a completed job returns: the script's value plus enough context to judge it. */
export interface JobResult {
  value: unknown;
  progress: Progress | null;
  logs: string[];
  logCount: number;
  rounds: number;
  effects: number;
}
