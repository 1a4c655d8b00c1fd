/**
 * Jobs as a list: one row per job, however many workflow runs it took (continue-as-new, resumes),
 * with what it does, whose it is, how far it got and how long it took.
 */
import type { Client, WorkflowExecutionInfo, WorkflowExecutionStatusName } from '@temporalio/client';
import type { JobState, Progress } from '../core/journal.ts';
import { ATTEMPT, PHASE, PROGRESS_DONE } from '../core/search-attributes.ts';

export type JobStatus = 'running' | 'waiting_for_approval' | 'completed' | 'failed' | 'cancelled';

/** Whether a job in this status may still change (the MCP task it backs is not terminal). */
export function isLive(status: JobStatus): boolean {
  return status === 'running' || status === 'waiting_for_approval';
}

/** The memo naming the principal that started a job; only it (and the operator) can see the job. */
export const OWNER_MEMO_KEY = 'owner';
/** The memo holding the job's one-line summary (also its summary in the Temporal UI). */
export const SUMMARY_MEMO_KEY = 'summary';

export interface JobRow {
  job_id: string;
  summary: string;
  owner: string | null;
  status: JobStatus;
  /** What the job is doing (`running`, `waiting_for_approval`, ...) as its workflow last said, when it says. */
  phase: string | null;
  progress: Progress | null;
  attempt: number | null;
  /** When its first run started (ISO 8601). */
  started: string;
  /** When its last run closed, unless it runs. */
  closed: string | null;
  /** From start to close, or to now while it runs. */
  seconds: number;
}

export interface ListFilter {
  limit: number;
  status?: JobStatus;
  owner?: string;
}

/** A job's status from its latest run's. */
export function jobStatusOf(name: WorkflowExecutionStatusName): JobStatus {
  switch (name) {
    case 'COMPLETED':
      return 'completed';
    case 'FAILED':
      return 'failed';
    case 'CANCELLED':
    case 'TERMINATED':
    case 'TIMED_OUT':
      return 'cancelled';
    default:
      // RUNNING, or CONTINUED_AS_NEW whose next run the list does not show yet.
      return 'running';
  }
}

/**
 * A job's status as visibility has it: its latest run's, or `waiting_for_approval` while a run
 * that says its phase (DcmPhase) waits for a human.
 */
export function listedStatusOf(info: WorkflowExecutionInfo): JobStatus {
  const status = jobStatusOf(info.status.name);
  return status === 'running' && info.typedSearchAttributes.get(PHASE) === 'waiting_for_approval'
    ? 'waiting_for_approval'
    : status;
}

/** How long a running job may take to answer the progress query before its row shows none. */
const PROGRESS_QUERY_MS = 3_000;

/**
 * The newest jobs of this deployment (its task queue: another deployment sharing the namespace may
 * seal its memos with a codec key this one lacks), `visible` deciding whose jobs the caller may see
 * (by the owner memo).
 * Runs of one job come newest first, so its first run seen is its latest, and its earliest start is
 * the last one seen.
 */
export async function listJobs(
  client: Client,
  taskQueue: string,
  visible: (memo: Record<string, unknown> | undefined) => boolean,
  filter: ListFilter,
): Promise<JobRow[]> {
  const rows = new Map<string, JobRow>();
  const done = new Set<string>();
  for await (const info of client.workflow.list({
    // Newest first; ORDER BY is not supported by every visibility store.
    query: `WorkflowType = 'durableScript' AND TaskQueue = '${taskQueue}'`,
  })) {
    const row = rows.get(info.workflowId);
    if (row) {
      if (info.startTime.toISOString() < row.started) {
        row.started = info.startTime.toISOString();
        row.seconds = secondsBetween(info.startTime, row.closed ? new Date(row.closed) : new Date());
      }
      continue;
    }
    if (done.has(info.workflowId) || !visible(info.memo)) continue;
    const candidate = rowOf(info);
    if ((filter.owner && candidate.owner !== filter.owner) || (filter.status && candidate.status !== filter.status)) {
      // Later (older) runs of the same job must not be taken for it.
      done.add(info.workflowId);
      continue;
    }
    if (rows.size >= filter.limit) break;
    rows.set(info.workflowId, candidate);
  }
  const list = [...rows.values()];
  await Promise.all(list.filter((r) => isLive(r.status)).map((r) => addLiveProgress(client, r)));
  return list;
}

function rowOf(info: WorkflowExecutionInfo): JobRow {
  const memo = info.memo ?? {};
  const closed = info.closeTime ?? null;
  const done = info.typedSearchAttributes.get(PROGRESS_DONE);
  return {
    job_id: info.workflowId,
    summary: typeof memo[SUMMARY_MEMO_KEY] === 'string' ? memo[SUMMARY_MEMO_KEY] : '',
    owner: typeof memo[OWNER_MEMO_KEY] === 'string' ? memo[OWNER_MEMO_KEY] : null,
    status: listedStatusOf(info),
    phase: info.typedSearchAttributes.get(PHASE) ?? null,
    progress: done === undefined ? null : { done, total: null, message: null },
    attempt: info.typedSearchAttributes.get(ATTEMPT) ?? null,
    started: info.startTime.toISOString(),
    closed: closed?.toISOString() ?? null,
    seconds: secondsBetween(info.startTime, closed ?? new Date()),
  };
}

const secondsBetween = (from: Date, to: Date) => Math.max(0, Math.round((to.getTime() - from.getTime()) / 1000));

/** A running job's progress as its workflow reports it now (with the total and message the search attribute lacks). */
async function addLiveProgress(client: Client, row: JobRow): Promise<void> {
  try {
    const state = await client.withDeadline(Date.now() + PROGRESS_QUERY_MS, () =>
      client.workflow.getHandle(row.job_id).query<JobState>('jobState'),
    );
    row.progress = state.progress ?? row.progress;
    row.attempt = state.attempt ?? row.attempt;
  } catch {
    // No worker answers now: the row keeps what the search attributes say.
  }
}
