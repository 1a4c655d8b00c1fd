/**
 * The durable model's vocabulary: what a script asks the outside world for (effects), what came
 * back (outcomes), and the journal of rounds that lets a fresh sandbox replay a job exactly.
 *
 * These schemas are the one definition of every value that crosses a process boundary (sandbox →
 * host, activity ↔ workflow). Workflow code imports only the inferred types, so zod stays out of
 * the workflow bundle.
 */
import { z } from 'zod';
import { AnsweredApproval, JobApprovalSettings, PendingApproval } from './approvals.ts';
import { configObject } from './config-object.ts';
import { EachPlan, LedgerReport, LedgerSummary } from './ledger.ts';
import { SandboxLimits } from './limits.ts';
import { JsonValue as json } from './json-value.ts';

export const HttpMethod = z.enum(['GET', 'POST', 'PUT', 'PATCH', 'DELETE', 'HEAD']);

/** Where a value too large for workflow history was put (claim check); content-addressed. */
export const BlobRef = z.object({ blob: z.string(), bytes: z.number().int().nonnegative() });

const QueryValue = z.union([
  z.string(),
  z.number(),
  z.boolean(),
  z.array(z.union([z.string(), z.number(), z.boolean()])),
]);

/**
 * Set on the writes of an each() with `reconcile`: when the worker that sent the call was lost
 * before any answer, the call is not sent again but fails with UncertainCallError, so the script
 * can find out whether it landed first.
 */
export const OnUncertain = z.literal('fail');

/** An API call through a provider client: `crm.request({ method, path, query, body })`. */
export const HttpEffect = z.object({
  kind: z.literal('http'),
  provider: z.string(),
  method: HttpMethod,
  path: z.string(),
  query: z.record(z.string(), QueryValue).optional(),
  body: json.optional(),
  /** Set instead of `body` when the body was too large for history. */
  bodyRef: BlobRef.optional(),
  onUncertain: OnUncertain.optional(),
});

/** A tool call on an upstream MCP server: `name.tool_name(args)`. */
export const ToolEffect = z.object({
  kind: z.literal('tool'),
  provider: z.string(),
  tool: z.string(),
  args: json.optional(),
  onUncertain: OnUncertain.optional(),
});

/** A durable timer: `sleep(ms)`. */
export const SleepEffect = z.object({ kind: z.literal('sleep'), ms: z.number().int().nonnegative() });

/** `checkpoint(state)`: a compact state kept durably; a resumed job starts with it as `resume`. */
export const CheckpointEffect = z.object({ kind: z.literal('checkpoint'), state: json });

/**
 * `approve(question, details, { timeoutMs })`: waits, durably, for a human's answer. The outcome is
 * `{ approved: true, by, note }`, or an ApprovalDeniedError carrying `{ by, note }` as its body.
 */
export const ApprovalEffect = z.object({
  kind: z.literal('approval'),
  question: z.string().min(1).max(2000),
  details: json.optional(),
  timeoutMs: z.number().int().positive().optional(),
});

export const EffectRequest = z.discriminatedUnion('kind', [
  HttpEffect,
  ToolEffect,
  SleepEffect,
  CheckpointEffect,
  ApprovalEffect,
]);

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
  z.object({ ok: z.literal(true), value: json.optional(), ref: BlobRef.optional() }),
  z.object({
    ok: z.literal(false),
    error: z.object({
      name: z.string(),
      message: z.string(),
      status: z.number().int().optional(),
      body: json.optional(),
    }),
  }),
]);

/**
 * A `step(name, fn)` value as JSON text, as the sandbox and the host pass it both ways: the host
 * stores a large value as the text it got and never builds its objects (a step may hold 100,000 rows).
 */
export const StepText = z.object({ index: z.number().int().nonnegative(), name: z.string(), json: z.string() });

/** A `step(name, fn)` result, saved so replay returns it without running `fn` again. */
export const StepRecord = z.object({
  index: z.number().int().nonnegative(),
  name: z.string(),
  value: json.optional(),
  ref: BlobRef.optional(),
});

export const Progress = z.object({ done: z.number(), total: z.number().nullable(), message: z.string().nullable() });

/**
 * A journaled effect: what was asked (by hash, so the journal stays small however large the
 * request) and what came back.
 */
export const JournalEffect = z.object({
  /** sha256 of the request's canonical JSON: replay compares it with what the script asks now. */
  key: z.string(),
  /** Human-readable, for divergence messages: `crm POST /leads`. */
  label: z.string(),
  outcome: EffectOutcome,
  /**
   * Sent again after an earlier attempt that may have sent it was lost before any response (its
   * worker killed or frozen mid-call): the API may have applied it twice, unless it honours the
   * idempotency key.
   */
  uncertain: z.literal(true).optional(),
});

/**
 * One round: the sandbox ran (at time `now`) until every pending promise waited on an effect;
 * those effects ran in parallel and their outcomes were delivered back in this order.
 */
export const Round = z.object({ now: z.number(), steps: z.array(StepRecord), effects: z.array(JournalEffect) });

/** How a script ended, as reported by the sandbox. */
export const ScriptOutcome = z.discriminatedUnion('kind', [
  z.object({ kind: z.literal('returned'), value: json }),
  z.object({ kind: z.literal('threw'), error: ScriptErrorInfo }),
]);

/** What one run of the sandbox to quiescence reports. Untrusted until parsed: the guest produced it. */
export const RoundReport = z.object({
  effects: z.array(EffectRequest),
  /** New step values, as the runtime's JSON.stringify wrote them. */
  steps: z.array(StepText),
  logs: z.array(z.string()),
  droppedLogs: z.number().int().nonnegative(),
  progress: Progress.nullable(),
  outcome: ScriptOutcome.nullable(),
  /** Items each() settled since the last report, and the counts now; absent when nothing changed. */
  ledger: LedgerReport.optional(),
  /** A dry run (job_resume preview): the plans of the each() calls the script reached. */
  plans: z.array(EachPlan).optional(),
});

/** How a job's calls reach its journal: per round, or (opt-in) several call-only rounds per activity. */
export const Durability = z.enum(['round', 'batched']);

/** When a batched session flushes its rounds to the journal: after this many calls or this long, whichever is first. */
export const BatchFlush = configObject({
  calls: z.number().int().positive().default(100),
  ms: z.number().int().positive().default(2_000),
});

/** How Temporal retries one provider's transient failures. */
export const RetrySettings = configObject({
  maximumAttempts: z.number().int().positive().default(8),
  initialIntervalMs: z.number().int().positive().default(500),
  maximumIntervalMs: z.number().int().positive().default(30_000),
  backoffCoefficient: z.number().min(1).default(2),
});

export const JobInput = z.object({
  jobId: z.string(),
  /** The script, unless it travels by reference (`codeRef`). */
  code: z.string().optional(),
  /** Set instead of `code` when the script is larger than the blob threshold; resolved when a sandbox opens. */
  codeRef: BlobRef.optional(),
  input: json.optional(),
  /** Set instead of `input` when it is larger than the blob threshold; resolved when a sandbox opens. */
  inputRef: BlobRef.optional(),
  limits: SandboxLimits.prefault({}),
  /** Retry settings per provider, fixed when the job starts so replays agree. */
  retry: z.record(z.string(), RetrySettings).default({}),
  /** 1 for a new job; each job_resume starts the next attempt. */
  attempt: z.number().int().positive().default(1),
  /** The last checkpoint of the previous attempt, exposed to the script as `resume`. */
  resume: json.optional(),
  /** A run of the workflow continues as new after this many history events. */
  maxEventsPerRun: z.number().int().min(200).default(1_000),
  /**
   * Providers whose calls run in batched mode (see Durability), and when to flush; fixed when the
   * job starts. Absent in jobs started before batched mode existed.
   */
  batched: z.array(z.string()).optional(),
  batchFlush: BatchFlush.optional(),
  /** The principal that started the job (jobs of v0.1.0 have none). */
  owner: z.string().optional(),
  /** Started with privacy on: the worker restores tokens in the job's requests from the owner's vault. */
  privacy: z.boolean().optional(),
  /** The approval policy and timeout (absent in jobs started before approvals existed). */
  approvals: JobApprovalSettings.optional(),
});

/** A job as its sandbox runs it: the script and the input at hand, no references (ClaimCheck.resolveJob). */
export const RunnableJob = JobInput.omit({ codeRef: true, inputRef: true }).extend({ code: z.string() });

export const SessionRef = z.object({ id: z.string(), taskQueue: z.string() });

/** An effect the workflow is to run, as prepared by the host from the sandbox's request. */
export const PlannedEffect = JournalEffect.omit({ outcome: true, uncertain: true }).extend({
  request: EffectRequest,
  /** Already known (a resumed job's agreeing effect): the workflow delivers it without running it. */
  prefilled: EffectOutcome.optional(),
  /**
   * A call the approval policy names, in a job with privacy on, as the approver sees it: with the
   * owner's tokens for the personal data in it (set only when there is some). The job's state
   * shows this copy while the call is held; `request` is what is sent.
   */
  shown: z.discriminatedUnion('kind', [HttpEffect, ToolEffect]).optional(),
});

/** A resumed attempt's adoption of the previous attempt's journal, as far as the new code agreed. */
export const Adoption = z.object({
  journal: z.array(BlobRef),
  rounds: z.number().int().nonnegative(),
  effects: z.number().int().nonnegative(),
  /** Where the new code stopped agreeing, or null when it agreed with the whole journal. */
  divergence: z.string().nullable(),
});

/** The reply of the activities that advance a sandbox session by one round. */
export const AdvanceResult = RoundReport.omit({ effects: true, steps: true, ledger: true }).extend({
  session: SessionRef,
  /** Small values inline, large ones by reference (claim check). */
  steps: z.array(StepRecord),
  effects: z.array(PlannedEffect),
  adoption: Adoption.optional(),
  /** The ledger's counts and first failures once the round's entries are in the blob store (never the entries). */
  ledger: LedgerSummary.optional(),
});

/** What the activities that make a call return: its outcome, and whether it may have been applied twice. */
export const CallResult = z.object({ outcome: EffectOutcome, uncertain: z.literal(true).optional() });

/** How a call that was in flight when its job was cancelled ended, within the grace period (limits.cancelGraceMs). */
export const InFlightCall = z.object({
  label: z.string(),
  /** succeeded / failed: its outcome is journaled or recorded, so job_resume will not send it again. */
  ended: z.enum(['succeeded', 'failed', 'not sent', 'no answer']),
});

/**
 * What every report on a job carries besides its status (the query's live view, the result of a
 * completed job, the details of a failed one, the agent's answers): build it with jobSummary().
 */
export const JobSummary = z.object({
  progress: Progress.nullable(),
  /** The latest lines of the script's console. */
  logs: z.array(z.string()),
  /** Lines logged in all (the dropped-lines notes included). */
  logCount: z.number().int().nonnegative(),
  rounds: z.number().int().nonnegative(),
  effects: z.number().int().nonnegative(),
  /** Runs of the continue-as-new chain so far, this one included. */
  runs: z.number().int().nonnegative(),
  /** 1 for the first attempt of a job; each job_resume adds one. */
  attempt: z.number().int().positive(),
  /** Where a resumed attempt stopped agreeing with the previous journal (reported to the agent). */
  divergence: z.string().nullable(),
  /** The script's each() items in this attempt: counts per ledger name and the first failures. */
  ledger: LedgerSummary.optional(),
  /** Questions waiting for a human, and the latest answers (absent until the job asks one). */
  approvals: z.object({ pending: z.array(PendingApproval), answered: z.array(AnsweredApproval) }).optional(),
  /**
   * Writes sent again after the worker that sent them was lost before any response (killed or
   * frozen mid-call): each may have been applied twice unless the API honoured its idempotency key.
   */
  uncertainCalls: z.number().int().positive().optional(),
  /** The Idempotency-Keys of the first MAX_UNCERTAIN_KEYS of them: what to look up at the API. */
  uncertainKeys: z.array(z.string()).optional(),
});

/**
 * What a failed job's failure carries from the workflow to the job service (the details of its
 * ApplicationFailure, whose type is the error's name): the error and the summary at that moment.
 */
export const FailureDetails = JobSummary.extend({ error: ScriptErrorInfo });

export type Json = z.infer<typeof json>;
export type BlobRef = z.infer<typeof BlobRef>;
export type JournalEffect = z.infer<typeof JournalEffect>;
export type PlannedEffect = z.infer<typeof PlannedEffect>;
export type Adoption = z.infer<typeof Adoption>;
export type RetrySettings = z.infer<typeof RetrySettings>;
export type CheckpointEffect = z.infer<typeof CheckpointEffect>;
export type HttpMethod = z.infer<typeof HttpMethod>;
export type HttpEffect = z.infer<typeof HttpEffect>;
export type SleepEffect = z.infer<typeof SleepEffect>;
export type ToolEffect = z.infer<typeof ToolEffect>;
export type ApprovalEffect = z.infer<typeof ApprovalEffect>;
export type EffectRequest = z.infer<typeof EffectRequest>;
export type EffectOutcome = z.infer<typeof EffectOutcome>;
export type ScriptErrorInfo = z.infer<typeof ScriptErrorInfo>;
export type StepRecord = z.infer<typeof StepRecord>;
export type StepText = z.infer<typeof StepText>;
/** A journal round as a sandbox replays it: outcomes resolved, step values as JSON text (what the guest takes). */
export type ReplayRound = Omit<Round, 'steps'> & { steps: StepText[] };
export type Progress = z.infer<typeof Progress>;
export type Round = z.infer<typeof Round>;
export type ScriptOutcome = z.infer<typeof ScriptOutcome>;
export type RoundReport = z.infer<typeof RoundReport>;
export type JobInput = z.infer<typeof JobInput>;
export type RunnableJob = z.infer<typeof RunnableJob>;
export type SessionRef = z.infer<typeof SessionRef>;
export type AdvanceResult = z.infer<typeof AdvanceResult>;
export type JobSummary = z.infer<typeof JobSummary>;
export type FailureDetails = z.infer<typeof FailureDetails>;
export type Durability = z.infer<typeof Durability>;
export type BatchFlush = z.infer<typeof BatchFlush>;
export type CallResult = z.infer<typeof CallResult>;
export type InFlightCall = z.infer<typeof InFlightCall>;

/** The journal of the current attempt: saved segments (earlier runs of the chain) plus this run's rounds. */
export interface JournalParts {
  segments: BlobRef[];
  rounds: Round[];
}

/** Arguments of the activities that drive the sandbox. */
export interface OpenSessionArgs {
  job: JobInput;
  /** Every completed round of this attempt; replayed before the session goes live. */
  journal: JournalParts;
  /** Time to hand the script when it goes live. */
  now: number;
  /** A resumed job: the previous attempt's journal, replayed as far as the script agrees with it. */
  previous?: BlobRef[];
}

/** What the activities that make one call (makeCall) take; a fused round makes its calls the same way. */
export interface MakeCallArgs {
  request: HttpEffect | ToolEffect;
  idempotencyKey: string;
  /** The job's attempt: a failure recorded by an earlier attempt (before a job_resume) is not reused. */
  jobAttempt: number;
  /**
   * The provider's retries, fixed when the job started: failures the API returned (not
   * infrastructure ones) count against maximumAttempts and wait out this backoff.
   */
  retry: RetrySettings;
  /** After a cancellation, how long a call already sent may take to land. */
  cancelGraceMs: number;
  /** See privacyOwner(): the owner whose vault restores the tokens in the request. */
  privacyOwner?: string;
}

/** What the fused round activity (runRound) takes: what only the workflow knows about the live session's next round. */
export interface RunRoundArgs {
  sessionId: string;
  /** How many rounds the session must already have delivered; anything else means it is stale. */
  roundsDelivered: number;
  /** The job's count of effects before this round: each call's position, which its idempotency key carries. */
  firstSeq: number;
  jobAttempt: number;
  /**
   * No attempt at these calls can have happened before (the only fused attempt at rounds nobody
   * tried, in a job's first attempt): they need not look for earlier attempts' records.
   */
  fresh: boolean;
  /** Per provider: API failures that end a call as a final ApiError. */
  maximumAttempts: Record<string, number>;
  cancelGraceMs: number;
  /** Batched mode: run on through call-only rounds of these providers until a flush is due. */
  batch?: { providers: string[]; flush: BatchFlush };
  /** See privacyOwner(): restores the tokens in the calls; what the next round shows carries them. */
  privacyOwner?: string;
  /**
   * Calls ahead (activities/ahead.ts): when the next report asks only for calls the workflow will
   * run fused (none the approval policy holds), start them before returning, within the job's
   * effect limit. Absent in rounds scheduled by earlier releases.
   */
  ahead?: { maxEffectsPerJob: number };
  /** The job was cancelled before this round's activity: stop the calls started ahead for it and report how they ended. */
  collect?: true;
}

/** What runRoundHere takes: the round, and the task queue of the worker holding its session. */
export interface RunRoundHereArgs extends RunRoundArgs {
  sessionTaskQueue: string;
}

/** A round a fused activity ran: its calls' outcomes (uncertain ones by index), then the sandbox's next report. */
export interface FusedRound {
  outcomes: EffectOutcome[];
  uncertain: number[];
  /** The time handed to the sandbox for the next round. */
  now: number;
  report: AdvanceResult;
}

/**
 * How a call of a round ended: its result, or why it has none: it met a transient API failure (to
 * be retried per call), was not sent (the job was cancelled first), or got no answer within the
 * cancel grace period.
 */
export type SettledCall =
  | CallResult
  | { unsettled: 'retry'; /** What the API answered, for the backoff's label. */ failure: string }
  | { unsettled: 'not sent' | 'no answer' };

export interface RunRoundResult {
  /** The rounds run and delivered, in order (more than one only in batched mode). */
  rounds: FusedRound[];
  /**
   * The round after them, if it stopped before delivery: a call met a transient API failure (the
   * workflow retries it per call, after `retryAfterMs`), or the job was cancelled.
   */
  stopped?: { calls: SettledCall[]; retryAfterMs?: number };
  /** The next round's calls were started ahead (RunRoundArgs.ahead): its activity takes them up, or collects them. */
  ahead?: true;
}

/** What a call activity that ends unsettled by a cancellation says in its CancelledFailure's details. */
export interface UnsettledDetails {
  unsettled: 'not sent' | 'no answer';
}

export interface AdvanceSessionArgs {
  sessionId: string;
  /** How many rounds the session must already have delivered; anything else means it is stale. */
  roundsDelivered: number;
  outcomes: EffectOutcome[];
  now: number;
  /** See privacyOwner(): what the round shows outside the job carries this principal's tokens. */
  privacyOwner?: string;
}

/** The workflow's live view, served by the `jobState` query. */
export interface JobState extends JobSummary {
  status: 'running' | 'completed' | 'failed';
  startedAt: number;
  /** The approval policy's counts per rule (`provider#index`), the rules granted `once`, and approvals asked so far. */
  approvalPolicy?: { counts: Record<string, number>; granted: Record<string, boolean>; asked: number };
  /** The providers the script called so far (absent in runs continued from v0.1.0 until the next round). */
  providers?: string[];
  /** When the job was cancelled mid-round: that round's calls and how each ended. */
  inFlight?: InFlightCall[];
  /** Calls before this position may have been attempted by a lost batched activity: their records must be checked. */
  attemptedUpTo?: number;
  /** The position of the next round's first call when the last fused round started that round's calls ahead. */
  aheadFrom?: number;
}

/** What a run of the workflow starts from: a new job, a continued run, or a resumed attempt. */
export interface DurableScriptInput {
  job: JobInput;
  /** Set by continue-as-new: the chain so far, and the round the next run must deliver first. */
  carried?: {
    journal: BlobRef[];
    state: JobState;
    checkpoint?: Json;
    /** What the next run does first: deliver a round's outcomes to the session, or run the round of a report already in hand. */
    pending: { session: SessionRef; outcomes: EffectOutcome[]; now: number } | { report: AdvanceResult; now: number };
  };
  /** Set by job_resume: the previous attempt's journal, replayed as far as the new code agrees. */
  previous?: BlobRef[];
}

/** Memo a failed or cancelled job leaves behind, so job_resume can find its journal. */
export interface ResumeMemo {
  journal: BlobRef[];
  checkpoint?: Json;
  /** The job's summary when it ended, so a cancelled job's status keeps its progress and logs. */
  summary?: JobSummary;
  /** The calls in flight when it was cancelled, and how each ended. */
  inFlight?: InFlightCall[];
}

/** What a completed job returns: the script's value plus its summary. */
export interface JobResult extends JobSummary {
  value: unknown;
}
