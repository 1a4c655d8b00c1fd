/**
 * Jobs as the agent and the operator see them: start a script as a workflow, wait for it a
 * bounded time, read its status, cancel it. Used by the MCP tools and the `jobs` CLI alike.
 *
 * Polling reads describe(), a query and the result; it never uses updates, which are capped per run.
 */
import { randomUUID } from 'node:crypto';
import {
  CancelledFailure,
  type Client,
  type WorkflowHandle,
  WorkflowFailedError,
  WorkflowNotFoundError,
} from '@temporalio/client';
import { ApplicationFailure, TerminatedFailure, TimeoutFailure } from '@temporalio/common';
import { RESUME_MEMO_KEY } from '../core/effects.ts';
import { ProductError } from '../core/errors.ts';
import { jobSummary } from '../core/job-summary.ts';
import {
  type DurableScriptInput,
  FailureDetails,
  type JobInput,
  type JobResult,
  type JobState,
  type JobSummary,
  type Progress,
  type ResumeMemo,
  type ScriptErrorInfo,
} from '../core/journal.ts';
import { checkScriptSyntax } from '../sandbox/isolate.ts';
import type { durableScript } from '../workflows/durable-script.ts';
import { OPERATOR, type Principal } from '../core/principal.ts';
import type { Privacy } from '../privacy/privacy.ts';
import type { SandboxLimits } from '../core/limits.ts';
import type { ProvidersConfig } from '../providers/config.ts';
import type { TemporalConfig } from '../temporal/config.ts';

export type JobStatus = 'running' | 'completed' | 'failed' | 'cancelled';

/** A job's summary as the answers spell it (JobSummary with `log_count`); without a summary, only these three. */
export type SummaryView = { progress: Progress | null; logs: string[]; log_count: number } & Partial<
  Omit<JobSummary, 'progress' | 'logs' | 'logCount'>
>;

/** What `execute` and `job_status` answer. */
export type JobView = {
  job_id: string;
  status: JobStatus;
  result?: unknown;
  error?: ScriptErrorInfo;
  note?: string;
} & SummaryView;

/** A request that does not fit the job's state, e.g. resuming a job that is still running. */
export class JobStateError extends ProductError {
  constructor(message: string) {
    super('JobStateError', message);
  }
}

export class JobNotFoundError extends ProductError {
  constructor(jobId: string, namespace: string) {
    super(
      'JobNotFoundError',
      `No job "${jobId}" in Temporal namespace "${namespace}". Check the id returned by execute.`,
    );
  }
}

export class ScriptTooLargeError extends ProductError {
  constructor(message: string) {
    super('ScriptTooLargeError', message);
  }
}

/** The answers' spelling of a job summary. */
function summaryView(from: JobSummary): SummaryView {
  const { logCount, ...summary } = jobSummary(from);
  return { ...summary, log_count: logCount };
}

/** What an answer says when it has no summary to give (a cancelled job, no worker answering). */
const NO_SUMMARY: SummaryView = { progress: null, logs: [], log_count: 0 };

export interface ExecuteRequest {
  code: string;
  input?: unknown;
  waitSeconds?: number;
}

/** The parts of the config the job service uses. */
export interface JobSettings {
  temporal: TemporalConfig;
  limits: SandboxLimits;
  providers: ProvidersConfig;
  maxEventsPerRun: number;
  defaultWaitSeconds: number;
}

/** The memo naming the principal that started a job; only it (and the operator) can see the job. */
export const OWNER_MEMO_KEY = 'owner';

/** A status read never waits longer than this, whatever the caller asks: MCP clients time out. */
const MAX_WAIT_SECONDS = 60;
const STATIC_DETAILS_MAX_CHARS = 20_000;

/**
 * Every method acts for one principal: it starts jobs owned by that principal, and a job owned by
 * anyone else looks exactly like a job that does not exist. The operator (the default: CLI, stdio)
 * sees all jobs.
 */
export class JobService {
  private readonly client: Client;
  private readonly config: JobSettings;
  readonly principal: Principal;
  /** With privacy on, a job's summary and details in the Temporal UI show tokens. */
  private readonly privacy: Privacy | undefined;

  constructor(client: Client, config: JobSettings, principal: Principal = OPERATOR, privacy?: Privacy) {
    this.client = client;
    this.config = config;
    this.principal = principal;
    this.privacy = privacy;
  }

  /** The same service acting for `principal`. */
  as(principal: Principal): JobService {
    return new JobService(this.client, this.config, principal, this.privacy);
  }

  /** Validates and starts a script, then waits up to `waitSeconds` for it to finish. */
  async execute(request: ExecuteRequest): Promise<JobView> {
    await this.validate(request.code);
    const jobId = `job-${randomUUID()}`;
    const job: JobInput = {
      jobId,
      code: request.code,
      input: request.input as JobInput['input'],
      limits: this.config.limits,
      retry: Object.fromEntries(Object.entries(this.config.providers).map(([name, p]) => [name, p.retry])),
      attempt: 1,
      maxEventsPerRun: this.config.maxEventsPerRun,
    };
    await this.start({ job }, summarize(request.code), this.principal.name);
    return this.status(jobId, request.waitSeconds ?? this.config.defaultWaitSeconds);
  }

  /**
   * Starts the next attempt of a failed or cancelled job under the same id. It replays the previous
   * attempt's journal as far as the (optionally corrected) code agrees with it, then runs live.
   */
  async resume(jobId: string, code?: string, waitSeconds = this.config.defaultWaitSeconds): Promise<JobView> {
    const handle = this.client.workflow.getHandle(jobId);
    const description = await this.describe(handle, jobId);
    const status = description.status.name;
    if (status === 'RUNNING')
      throw new JobStateError(
        `Job ${jobId} is still running; only a failed or cancelled job can be resumed. Cancel it first (job_cancel), or wait for it.`,
      );
    if (status === 'COMPLETED')
      throw new JobStateError(`Job ${jobId} completed; there is nothing to resume. Start a new job with execute.`);
    const memo = description.memo?.[RESUME_MEMO_KEY] as ResumeMemo | undefined;
    if (!memo) {
      throw new JobStateError(
        `Job ${jobId} left no journal to resume from (it was ${status.toLowerCase()} before it could save one, e.g. terminated by an operator). Start a new job with execute.`,
      );
    }
    if (code !== undefined) await this.validate(code);
    const previous = await this.inputOf(handle);
    const owner = (description.memo?.[OWNER_MEMO_KEY] as string | undefined) ?? this.principal.name;
    const job: JobInput = {
      ...previous.job,
      code: code ?? previous.job.code,
      attempt: previous.job.attempt + 1,
      resume: memo.checkpoint,
    };
    await this.start(
      { job, previous: memo.journal },
      `resume (attempt ${job.attempt}): ${summarize(job.code).replace(/^execute: /, '')}`,
      owner,
    );
    return this.status(jobId, waitSeconds);
  }

  private async validate(code: string): Promise<void> {
    const bytes = Buffer.byteLength(code);
    if (bytes > this.config.limits.maxScriptBytes) {
      throw new ScriptTooLargeError(
        `The script is ${bytes} bytes; the limit is ${this.config.limits.maxScriptBytes} (limits.maxScriptBytes). Move data into \`input\` or fetch it inside the script.`,
      );
    }
    await checkScriptSyntax(code);
  }

  private async start(input: DurableScriptInput, summary: string, owner: string): Promise<void> {
    // The summary and details show in the Temporal UI (undecoded without a codec): tokens there too.
    const shown = async (text: string) => (this.privacy ? this.privacy.tokenizeText(owner, text) : text);
    await this.client.workflow.start<typeof durableScript>('durableScript', {
      taskQueue: this.config.temporal.taskQueue,
      workflowId: input.job.jobId,
      args: [input],
      memo: { [OWNER_MEMO_KEY]: owner },
      staticSummary: await shown(summary),
      staticDetails: await shown('```js\n' + input.job.code.slice(0, STATIC_DETAILS_MAX_CHARS) + '\n```'),
    });
  }

  /** The input of the job's latest run (every run carries the whole job), decrypted when a codec is set. */
  private async inputOf(handle: WorkflowHandle): Promise<DurableScriptInput> {
    const history = await handle.fetchHistory();
    let payload = history.events?.[0]?.workflowExecutionStartedEventAttributes?.input?.payloads?.[0];
    if (!payload) throw new Error(`cannot read the input of job ${handle.workflowId} from its history`);
    const { payloadCodecs, payloadConverter } = this.client.options.loadedDataConverter;
    for (const codec of [...payloadCodecs].reverse()) [payload] = await codec.decode([payload]);
    return payloadConverter.fromPayload<DurableScriptInput>(payload);
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
    for await (const info of this.client.workflow.list({
      query: `WorkflowType = 'durableScript'` /* newest first; ORDER BY is not supported by every visibility store */,
    })) {
      if (!this.owns(info.memo)) continue;
      jobs.push({
        job_id: info.workflowId,
        status: info.status.name.toLowerCase(),
        started: info.startTime.toISOString(),
        closed: info.closeTime?.toISOString(),
      });
      if (jobs.length >= limit) break;
    }
    return jobs;
  }

  private async describeStatus(handle: WorkflowHandle, jobId: string): Promise<string> {
    return (await this.describe(handle, jobId)).status.name;
  }

  /** Describes the job, or answers "not found" when it does not exist or belongs to someone else. */
  private async describe(handle: WorkflowHandle, jobId: string) {
    let description;
    try {
      description = await handle.describe();
    } catch (e) {
      if (e instanceof WorkflowNotFoundError) throw new JobNotFoundError(jobId, this.config.temporal.namespace);
      throw e;
    }
    if (!this.owns(description.memo)) throw new JobNotFoundError(jobId, this.config.temporal.namespace);
    return description;
  }

  private owns(memo: Record<string, unknown> | undefined): boolean {
    return this.principal.seesAll || memo?.[OWNER_MEMO_KEY] === this.principal.name;
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
      return { job_id: jobId, status: 'running', ...summaryView(state) };
    } catch {
      return {
        job_id: jobId,
        status: 'running',
        ...NO_SUMMARY,
        note: 'No worker answered the progress query; the job will continue when a worker (`durable-codemode worker`) is running.',
      };
    }
  }

  private async finishedView(handle: WorkflowHandle<typeof durableScript>, jobId: string): Promise<JobView> {
    try {
      const result: JobResult = await handle.result();
      return { job_id: jobId, status: 'completed', ...summaryView(result), result: result.value };
    } catch (e) {
      if (!(e instanceof WorkflowFailedError)) throw e;
      return failureView(jobId, e);
    }
  }
}

function failureView(jobId: string, e: WorkflowFailedError): JobView {
  const cause = e.cause;
  if (cause instanceof CancelledFailure || cause instanceof TerminatedFailure || cause instanceof TimeoutFailure) {
    const how =
      cause instanceof CancelledFailure
        ? 'cancelled'
        : cause instanceof TerminatedFailure
          ? 'terminated by an operator'
          : 'timed out';
    return { job_id: jobId, status: 'cancelled', ...NO_SUMMARY, note: `The job was ${how}.` };
  }
  // The workflow's failures carry FailureDetails (workflows/end-of-job.ts); anything else is reported as it came.
  const details = cause instanceof ApplicationFailure ? FailureDetails.safeParse(cause.details?.[0]) : undefined;
  if (details?.success) {
    const { error, ...summary } = details.data;
    return { job_id: jobId, status: 'failed', error, ...summaryView(summary) };
  }
  return {
    job_id: jobId,
    status: 'failed',
    error: { name: cause?.name ?? 'Error', message: cause?.message ?? e.message },
    ...NO_SUMMARY,
  };
}

/** A one-line summary for the Temporal UI: the script's first meaningful line. */
function summarize(code: string): string {
  const line =
    code
      .split('\n')
      .map((l) => l.trim())
      .find((l) => l && !/^async\s*\(\)\s*=>\s*\{?$/.test(l) && !l.startsWith('//')) ?? code.trim();
  return `execute: ${line.slice(0, 100)}`;
}
