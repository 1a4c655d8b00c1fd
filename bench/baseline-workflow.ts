/**
 * The floor of the architecture: workflows that make each call as one activity (one workflow task
 * per round, one activity per call) against the same API as the durable runs. Workflow code:
 * bundled for Temporal's sandbox, so nothing but @temporalio/workflow.
 */
import { proxyActivities } from '@temporalio/workflow';

/** What the benches' floor workers run: the call alone, as the direct runner makes it. */
export interface BaselineActivities {
  /** `npm run bench`: one POST /leads. */
  createLead(run: string, i: number): Promise<void>;
  /** `npm run bench:long`: rows `first` to `first + count` of the sheet as one POST /leads/batch; the leads created. */
  postBatch(sheet: string, first: number, count: number): Promise<number>;
}

const { createLead, postBatch } = proxyActivities<BaselineActivities>({ startToCloseTimeout: '1 minute' });

/** `calls` creates, `batch` at a time. */
export async function baseline(run: string, calls: number, batch = 1): Promise<number> {
  for (let i = 0; i < calls; i += batch)
    await Promise.all(Array.from({ length: batch }, (_, j) => createLead(run, i + j)));
  return calls;
}

/** The lead import's floor: the sheet's `rows` in batches of `batch`, one after the other. */
export async function importBaseline(sheet: string, rows: number, batch: number): Promise<number> {
  let created = 0;
  for (let first = 0; first < rows; first += batch)
    created += await postBatch(sheet, first, Math.min(batch, rows - first));
  return created;
}
