/** How jobs are started, waited for and approved: `maxEventsPerRun`, `defaultWaitSeconds`, `batchFlush`, `approvals`. */
import { z } from 'zod';
import { configObject } from '../core/config-object.ts';
import { BatchFlush } from '../core/journal.ts';
import { PRINCIPAL_NAME } from '../core/principal.ts';

/**
 * A job's workflow run continues as new after this many history events (Temporal's hard limit is
 * 51,200): about 160 fused rounds. Short runs keep a replay on another worker (after a crash or a
 * cache eviction) quick, and with it the workflow task timeout (core/timeouts.ts) that bounds how
 * long a frozen worker holds a job up.
 */
export const MaxEventsPerRun = z.number().int().min(200).max(40_000).default(1_000);

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

/** When a job in batched mode (a provider's `durability: "batched"`) flushes its rounds to the journal. */
export const BatchFlushConfig = BatchFlush.prefault({});
