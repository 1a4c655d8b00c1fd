/** How jobs are started, waited for and approved: `maxEventsPerRun`, `defaultWaitSeconds`, `approvals`. */
import { z } from 'zod';
import { configObject } from '../core/config-object.ts';
import { PRINCIPAL_NAME } from '../core/principal.ts';

/** A job's workflow run continues as new after this many history events (Temporal's hard limit is 51,200). */
export const MaxEventsPerRun = z.number().int().min(200).max(40_000).default(10_000);

/** How long `execute` waits for a result before answering with a job id. */
export const DefaultWaitSeconds = z.number().min(0).max(300).default(20);

/**
 * Who answers approvals, and how long a question waits. Without `approvers`, a job's owner and the
 * operator answer; with them, the listed principals and the operator (an agent cannot approve its
 * own gated writes then).
 */
export const ApprovalsConfig = configObject({
  approvers: z.array(z.string().regex(PRINCIPAL_NAME, 'a principal is 1-64 letters, digits, _ . @ -')).optional(),
  /** An unanswered approval is denied after this long (7 days); `approve()` and policy rules may set their own. */
  timeoutSeconds: z
    .number()
    .int()
    .positive()
    .default(7 * 24 * 3600),
}).prefault({});

export type ApprovalsConfig = z.infer<typeof ApprovalsConfig>;
