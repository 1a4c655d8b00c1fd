/**
 * Jobs as the agent and the operator see them: start a script as a workflow, wait for it a
 * bounded time, read its status, cancel it. Used by the MCP tools and the `jobs` CLI alike.
 *
 * Polling reads describe(), a query and the result; it never uses updates, which are capped per run.
 */
import { randomUUID } from 'node:crypto';
import { CancelledFailure, type Client, type WorkflowHandle, WorkflowFailedError, WorkflowNotFoundError } from '@temporalio/client';
import { ApplicationFailure, TerminatedFailure, TimeoutFailure } from '@temporalio/common';
import type { JobInput, JobResult, JobState, Progress, ScriptErrorInfo } from '../core/journal.ts';
import { checkScriptSyntax } from '../sandbox/isolate.ts';
import type { durableScript } from '../workflows/durable-script.ts';
import type { Config } from './config.ts';

export type JobStatus = 'running' | 'completed' | 'failed' | 'cancelled';

/** What `execute` and `job_status` answer. */
export interface JobView {
  job_id: string;
  status: JobStatus;
  progress: Progress | null;
  result?: unknown;
  error?: ScriptErrorInfo;
  logs: string[];
  log_count: number;
  rounds?: number;
  effects?: number;
  note?: string;
}

export class JobNotFoundError extends Error {
  constructor(jobId: string, namespace: string) {
    super(`No job "${jobId}" in Temporal namespace "${namespace}". Check the id returned by execute.`);
    this.name = 'JobNotFoundError';
  }
}

export interface ExecuteRequest {
  code: string;
  input?: unknown;
  waitSeconds?: number;
}

/** A status read never waits longer than this, whatever the caller asks: MCP clients time out. */
const MAX_WAIT_SECONDS = 60;
const STATIC_DETAILS_MAX_CHARS = 20_000;

export class JobService {
  private readonly client: Client;
  private readonly config: Config;

  constructor(client: Client, config: Config) {
    this.client = client;
    this.config = config;
  }

  /** Validates and starts a script, then waits up to `waitSeconds` for it to finish. */
  async execute(request: ExecuteRequest): Promise<JobView> {
    await checkScriptSyntax(request.code);
    const jobId = `job-${randomUUID()}`;
    const job: JobInput = { jobId, code: request.code, input: request.input as JobInput['input'], limits: this.config.limits };
    await this.client.workflow.start<typeof durableScript>('durableScript', {
      taskQueue: this.config.temporal.taskQueue,
      workflowId: jobId,
      args: [job],
      staticSummary: summarize(request.code),
      staticDetails: '```js\n' + request.code.slice(0, STATIC_DETAILS_MAX_CHARS) + '\n```',
    });
    return this.status(jobId, request.waitSeconds ?? this.config.defaultWaitSeconds);
  }

  /** The job's status, waiting up to `waitSeconds` for it to finish first. */
  async status(jobId: string, waitSeconds = 0): Promise<JobView> {
    const handle = this.client.workflow.getHandle<typeof durableScript>(jobId);
    let status = await this.describeStatus(handle, jobId);
    if (status === 'RUNNING' && waitSeconds > 0) {
      await this.waitForResult(handle, Math.min(waitSeconds, MAX_WAIT_SECONDS) * 1000);
      status = await this.describeStatus(handle, jobId);
    }
    if (status === 'RUNNING') return this.runningView(handle, jobId);
    return this.finishedView(handle, jobId);
  }

  async cancel(jobId: string): Promise<JobView> {
    const handle = this.client.workflow.getHandle(jobId);
    const status = await this.describeStatus(handle, jobId);
    if (status !== 'RUNNING') {
      const view = await this.finishedView(handle, jobId);
      return { ...view, note: `The job had already ended (${view.status}); nothing to cancel.` };
    }
    await handle.cancel();
    return this.status(jobId, 10);
  }

  async list(limit = 20): Promise<Array<{ job_id: string; status: string; started: string; closed?: string }>> {
    const jobs = [];
    for await (const info of this.client.workflow.list({ query: `WorkflowType = 'durableScript'` /* newest first; ORDER BY is not supported by every visibility store */ })) {
      jobs.push({ job_id: info.workflowId, status: info.status.name.toLowerCase(), started: info.startTime.toISOString(), closed: info.closeTime?.toISOString() });
      if (jobs.length >= limit) break;
    }
    return jobs;
  }

  private async describeStatus(handle: WorkflowHandle, jobId: string): Promise<string> {
    try {
      return (await handle.describe()).status.name;
    } catch (e) {
      if (e instanceof WorkflowNotFoundError) throw new JobNotFoundError(jobId, this.config.temporal.namespace);
      throw e;
    }
  }

  /** Waits for the workflow to close, or `ms`, whichever is first; the long poll is aborted either way. */
  private async waitForResult(handle: WorkflowHandle, ms: number): Promise<void> {
    const abort = new AbortController();
    const timer = setTimeout(() => abort.abort(), ms);
    try {
      await this.client.withAbortSignal(abort.signal, () => handle.result());
    } catch {
      // Closed with a failure, or the wait ran out: either way the caller describes again.
    } finally {
      clearTimeout(timer);
    }
  }

  private async runningView(handle: WorkflowHandle, jobId: string): Promise<JobView> {
    try {
      const state = await this.client.withDeadline(Date.now() + 5_000, () => handle.query<JobState>('jobState'));
      return { job_id: jobId, status: 'running', progress: state.progress, logs: state.logs, log_count: state.logCount, rounds: state.rounds, effects: state.effects };
    } catch {
      return {
        job_id: jobId,
        status: 'running',
        progress: null,
        logs: [],
        log_count: 0,
        note: 'No worker answered the progress query; the job will continue when a worker (`durable-codemode worker`) is running.',
      };
    }
  }

  private async finishedView(handle: WorkflowHandle<typeof durableScript>, jobId: string): Promise<JobView> {
    try {
      const result: JobResult = await handle.result();
      return {
        job_id: jobId,
        status: 'completed',
        progress: result.progress,
        result: result.value,
        logs: result.logs,
        log_count: result.logCount,
        rounds: result.rounds,
        effects: result.effects,
      };
    } catch (e) {
      if (!(e instanceof WorkflowFailedError)) throw e;
      return failureView(jobId, e);
    }
  }
}

function failureView(jobId: string, e: WorkflowFailedError): JobView {
  const cause = e.cause;
  if (cause instanceof CancelledFailure || cause instanceof TerminatedFailure || cause instanceof TimeoutFailure) {
    const how = cause instanceof CancelledFailure ? 'cancelled' : cause instanceof TerminatedFailure ? 'terminated by an operator' : 'timed out';
    return { job_id: jobId, status: 'cancelled', progress: null, logs: [], log_count: 0, note: `The job was ${how}.` };
  }
  if (cause instanceof ApplicationFailure) {
    const details = cause.details?.[0] as
      | { error: ScriptErrorInfo; logs: string[]; logCount: number; progress: Progress | null; rounds: number; effects: number }
      | undefined;
    if (details?.error) {
      return {
        job_id: jobId,
        status: 'failed',
        error: details.error,
        progress: details.progress,
        logs: details.logs,
        log_count: details.logCount,
        rounds: details.rounds,
        effects: details.effects,
      };
    }
  }
  return { job_id: jobId, status: 'failed', error: { name: cause?.name ?? 'Error', message: cause?.message ?? e.message }, progress: null, logs: [], log_count: 0 };
}

/** A one-line summary for the Temporal UI: the script's first meaningful line. */
function summarize(code: string): string {
  const line = code.split('\n').map((l) => l.trim()).find((l) => l && !/^async\s*\(\)\s*=>\s*\{?$/.test(l) && !l.startsWith('//')) ?? code.trim();
  return `execute: ${line.slice(0, 100)}`;
}
