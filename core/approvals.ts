/**
 * Humans in the loop: what a pending approval is, how it is answered, and the operator's policy of
 * calls that need one. A pending approval is workflow state (no sandbox or worker held while it
 * waits); every way of answering (MCP, CLI, Temporal UI) sends the one `answerApproval` Update.
 *
 * The schemas are the contract between the workflow, the job service and the config; workflow code
 * imports only their types (zod stays out of the workflow bundle) and the pure helpers of
 * approval-policy.ts.
 */
import { z } from 'zod';
import { configObject } from './config-object.ts';
import { JsonValue as json } from './json-value.ts';

/**
 * The payload of `answerApproval` (ANSWER_APPROVAL in approval-policy.ts), as the Temporal UI or `temporal workflow update execute` sends it:
 * `{ "approved": true, "note": "checked the first 100" }`. Without `id`, it answers every pending
 * approval. `by` and `via` are set by the job service from the authenticated principal; an answer
 * sent straight to Temporal has neither and is recorded as the operator's (Temporal access is
 * operator access).
 */
export const ApprovalAnswer = z.object({
  approved: z.boolean(),
  id: z.string().optional(),
  note: z.string().max(2000).optional(),
  by: z.string().optional(),
  via: z.string().optional(),
});

/** A call held by the approval policy: which provider, what it would send (never credentials: the worker adds those). */
export const HeldCall = z.object({
  provider: z.string(),
  label: z.string(),
  request: json,
});

/** A question waiting for a human: from `approve(question, details)` or from the policy (then `call` is set). */
export const PendingApproval = z.object({
  id: z.string(),
  question: z.string(),
  details: json.optional(),
  /** ISO time it started waiting. */
  since: z.string(),
  /** ISO time it is denied unless answered first. */
  expires: z.string(),
  call: HeldCall.optional(),
});

export const AnsweredApproval = PendingApproval.omit({ details: true, call: true }).extend({
  approved: z.boolean(),
  /** The principal that answered, or `timeout`. */
  by: z.string(),
  /** How the answer came: mcp, cli, temporal, timeout. */
  via: z.string(),
  at: z.string(),
  note: z.string().optional(),
});

/** What `approve()` resolves to in the script. */
export interface ApprovalGranted {
  approved: true;
  by: string;
  note: string | null;
}

/**
 * One rule of a provider's approval policy (`providers.NAME.approval` in the config). `match` lists
 * operations of an HTTP API as `METHOD /path` (METHOD may be `*`; a path segment `*` or `{name}`
 * matches one segment, a final `**` any rest) or tool names of an MCP provider (`*` matches any
 * characters). The first `after` matching calls of a job go through; from then on each matching
 * call waits for an approval (`ask: "each"`), or only the first one, whose approval lets the rest
 * through (`ask: "once"`: "show me the first 100 writes, then go on").
 */
export const ApprovalRule = configObject({
  match: z.array(z.string().min(1)).min(1),
  after: z.number().int().nonnegative().default(0),
  ask: z.enum(['each', 'once']).default('each'),
  /** Denied unless answered within this long (default `approvals.timeoutSeconds`). */
  timeoutSeconds: z.number().int().positive().optional(),
});

/** The approval settings a job carries, fixed when it starts (so replays and continued runs agree). */
export const JobApprovalSettings = z.object({
  /** Policy rules by provider. */
  rules: z.record(z.string(), z.array(ApprovalRule)).default({}),
  timeoutSeconds: z.number().int().positive(),
});

export type JobApprovalSettings = z.infer<typeof JobApprovalSettings>;
export type ApprovalAnswer = z.infer<typeof ApprovalAnswer>;
export type HeldCall = z.infer<typeof HeldCall>;
export type PendingApproval = z.infer<typeof PendingApproval>;
export type AnsweredApproval = z.infer<typeof AnsweredApproval>;
export type ApprovalRule = z.infer<typeof ApprovalRule>;

/** The approvals of a job as its status shows them. */
export interface JobApprovals {
  pending: PendingApproval[];
  /** The latest answers, newest last. */
  answered: AnsweredApproval[];
}
