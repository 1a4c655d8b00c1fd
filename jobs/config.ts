/** How jobs are started and waited for: the top-level `maxEventsPerRun` and `defaultWaitSeconds`. */
import { z } from 'zod';

/** A job's workflow run continues as new after this many history events (Temporal's hard limit is 51,200). */
export const MaxEventsPerRun = z.number().int().min(200).max(40_000).default(10_000);

/** How long `execute` waits for a result before answering with a job id. */
export const DefaultWaitSeconds = z.number().min(0).max(300).default(20);
