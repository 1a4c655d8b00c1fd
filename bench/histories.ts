/** The workflow histories of a job's continue-as-new chain, for the benchmarks that report events per run. */
import assert from 'node:assert/strict';
import { setTimeout as delay } from 'node:timers/promises';
import type { Client } from '@temporalio/client';
import type { History } from '@temporalio/common/lib/proto-utils.js';
import type { JobView } from '../jobs/service.ts';
import { sheetRow } from '../demo-apis/sheets.ts';

export type HistoryEvent = NonNullable<History['events']>[number];

export interface RunHistory {
  events: HistoryEvent[];
  /** The history as JSON, payloads as their (JSON) text. */
  jsonBytes: number;
  /** The size Temporal counts against its 50 MiB limit. */
  temporalBytes: number;
}

/** Every run of the job's continue-as-new chain, oldest first, checked to hold no row of the sheet inline. */
export async function runsOf(client: Client, view: JobView, sheet: string, rows: number): Promise<RunHistory[]> {
  const runs: RunHistory[] = [];
  // Visibility lags a little behind the chain.
  for (let tries = 0; runs.length !== view.runs; tries++) {
    if (tries === 50)
      throw new Error(`job ${view.job_id}: visibility lists ${runs.length} runs, the job reports ${view.runs}`);
    if (tries > 0) await delay(100);
    runs.length = 0;
    for await (const info of client.workflow.list({ query: `WorkflowId = '${view.job_id}'` })) {
      const history = await client.workflow.getHandle(view.job_id, info.runId).fetchHistory();
      const text = JSON.stringify(history, (_k, v: unknown) =>
        v instanceof Uint8Array ? Buffer.from(v).toString('utf8') : v,
      );
      const lastEmail = sheetRow(sheet, rows - 1).email;
      assert(
        !text.includes(lastEmail),
        `run ${info.runId} of job ${view.job_id} holds a row of the sheet (${lastEmail}) inline: it belongs in the blob store`,
      );
      runs.push({ events: history.events ?? [], jsonBytes: text.length, temporalBytes: info.historySize ?? 0 });
    }
  }
  // list() answers newest first.
  return runs.reverse();
}
