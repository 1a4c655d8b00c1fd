/**
 * The floor of the architecture: a workflow that only calls a no-op activity, one at a time.
 * Workflow code: bundled for Temporal's sandbox, so nothing but @temporalio/workflow.
 */
import { proxyActivities } from '@temporalio/workflow';

const { noop } = proxyActivities<{ noop(): Promise<void> }>({ startToCloseTimeout: '1 minute' });

export async function baseline(calls: number): Promise<number> {
  for (let i = 0; i < calls; i++) await noop();
  return calls;
}
