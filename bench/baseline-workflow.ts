/**
 * The floor of the architecture: a workflow that makes each call as one activity, one at a time
 * (one workflow task plus one activity per call), against the same API as the durable runs.
 * Workflow code: bundled for Temporal's sandbox, so nothing but @temporalio/workflow.
 */
import { proxyActivities } from '@temporalio/workflow';

const { createLead } = proxyActivities<{ createLead(run: string, i: number): Promise<void> }>({
  startToCloseTimeout: '1 minute',
});

export async function baseline(run: string, calls: number): Promise<number> {
  for (let i = 0; i < calls; i++) await createLead(run, i);
  return calls;
}
