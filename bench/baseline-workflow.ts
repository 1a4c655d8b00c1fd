/**
 * The floor of the architecture: a workflow that makes each call as one activity (one workflow task
 * per round, one activity per call), `batch` calls at a time, against the same API as the durable runs.
 * Workflow code: bundled for Temporal's sandbox, so nothing but @temporalio/workflow.
 */
import { proxyActivities } from '@temporalio/workflow';

const { createLead } = proxyActivities<{ createLead(run: string, i: number): Promise<void> }>({
  startToCloseTimeout: '1 minute',
});

export async function baseline(run: string, calls: number, batch = 1): Promise<number> {
  for (let i = 0; i < calls; i += batch)
    await Promise.all(Array.from({ length: batch }, (_, j) => createLead(run, i + j)));
  return calls;
}
