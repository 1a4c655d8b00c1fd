/**
 * Jobs as the agent and the operator see them: start a script as a workflow, wait for it a
 * bounded time, read its status, cancel it. Used by the MCP tools and the `jobs` CLI alike.
 *
 * Polling reads describe(), a query and the result; it never uses updates, which are capped per run.
 */
import { randomUUID } from 'node:crypto';
import { setTimeout as delay } from 'node:timers/promises';
import {
  CancelledFailure,
  type Client,
  type WorkflowHandle,
  WorkflowExecutionAlreadyStartedError,
  WorkflowFailedError,
  WorkflowNotFoundError,
  WorkflowUpdateFailedError,
} from '@temporalio/client';
import {
  ApplicationFailure,
  type SearchAttributePair,
  TerminatedFailure,
  TimeoutFailure,
  type WorkflowIdReusePolicy,
} from '@temporalio/common';
import { ClaimCheck } from '../blobs/claim-check.ts';
import type { BlobsConfig } from '../blobs/config.ts';
import { createBlobStore } from '../blobs/index.ts';
import { ANSWER_APPROVAL } from '../core/approval-policy.ts';
import type { ApprovalAnswer } from '../core/approvals.ts';
import { RESUME_MEMO_KEY } from '../core/effects.ts';
import { ProductError } from '../core/errors.ts';
import { jobSummary } from '../core/job-summary.ts';
import { workflowTaskTimeoutMs } from '../core/timeouts.ts';
import {
  type BatchFlush,
  type Durability,
  type DurableScriptInput,
  FailureDetails,
  type InFlightCall,
  type JobInput,
  type JobResult,
  type JobState,
  JobSummary,
  type Progress,
  type ResumeMemo,
  type ScriptErrorInfo,
} from '../core/journal.ts';
import type { PreviewResumeArgs, ResumePreview } from '../core/resume-preview.ts';
import { ATTEMPT, CLI_TYPE_NAMES, OWNER, PHASE, SEARCH_ATTRIBUTES } from '../core/search-attributes.ts';
import type { BlobStore } from '../blobs/store.ts';
import { type AttemptEntry, JobLedger } from '../ledger/views.ts';
import { checkScriptSyntax } from '../sandbox/isolate.ts';
import type { durableScript } from '../workflows/durable-script.ts';
import type { previewResume } from '../workflows/preview.ts';
import { OPERATOR, type Principal } from '../core/principal.ts';
import type { Privacy } from '../privacy/privacy.ts';
import type { SandboxLimits } from '../core/limits.ts';
import type { ProvidersConfig } from '../providers/config.ts';
import type { TemporalConfig } from '../temporal/config.ts';
import type { ApprovalsConfig } from './config.ts';
import {
  type JobRow,
  type JobStatus,
  jobStatusOf,
  listedStatusOf,
  type ListFilter,
  listJobs,
  OWNER_MEMO_KEY,
  SUMMARY_MEMO_KEY,
} from './list.ts';
import { jobIdSource, newJobId, summarize } from './naming.ts';
import { checkInputSize } from './input-limits.ts';
import { JobStartError, startFailure } from './start-failure.ts';

export { isLive, OWNER_MEMO_KEY } from './list.ts';
export type { JobRow, JobStatus } from './list.ts';

/** A job's summary as the answers spell it (JobSummary with `log_count`); without a summary, only these three. */
export type SummaryView = {
  progress: Progress | null;
  logs: string[];
  log_count: number;
  uncertain_calls?: number;
  /** The Idempotency-Keys of the (first 20) uncertain calls. */
  uncertain_keys?: string[];
} & Partial<Omit<JobSummary, 'progress' | 'logs' | 'logCount' | 'uncertainCalls' | 'uncertainKeys'>>;

/** What `execute` and the `job` tool answer. */
export type JobView = {
  job_id: string;
  status: JobStatus;
  result?: unknown;
  error?: ScriptErrorInfo;
  note?: string;
  /** A cancelled job: the calls in flight when the cancel came, and how each ended. */
  in_flight?: InFlightCall[];
} & SummaryView;

/** What job_resume with dry run answers: the preview (core/resume-preview.ts) of the job's next attempt. */
export type ResumePreviewView = { job_id: string; attempt: number; note: string } & ResumePreview;

/** Failed and uncertain each() items per page of the failures view (the job tool with `failures`). */
export const FAILURES_PER_PAGE = 20;

/** A page of the job's failed and uncertain each() items (each item's latest entry), oldest first. */
export interface FailuresPage {
  job_id: string;
  failures_page: number;
  failures_pages: number;
  failures_total: number;
  failures: AttemptEntry[];
}

/** A request that does not fit the job's state, e.g. resuming a job that is still running. */
export class JobStateError extends ProductError {
  constructor(message: string) {
    super('JobStateError', message);
  }
}

export class JobNotFoundError extends ProductError {
  constructor(jobId: string, namespace: string, hint = MCP_WORDING.findId) {
    super('JobNotFoundError', `No job "${jobId}" in Temporal namespace "${namespace}". ${hint}`);
  }
}

/** The service's advice names the front end's own actions: MCP tools for agents, commands in the CLI. */
export interface JobWording {
  /** How to find a job's id. */
  findId: string;
  /** How to start a new job. */
  startNew: string;
  /** What to do about a job that still runs. */
  stopFirst: string;
  /** How to follow a running job. */
  follow: string;
  /** How to resume for real after a preview. */
  resume: string;
}

export const MCP_WORDING: JobWording = {
  findId: 'Check the id returned by execute.',
  startNew: 'Start a new job with execute.',
  stopFirst: 'Cancel it first (the job tool, action "cancel"), or wait for it.',
  follow: 'Follow it with the job tool.',
  resume: 'job_resume without dry_run runs it.',
};

/** A principal who may see a job but not answer its approvals (the config names other approvers). */
export class ApprovalNotAllowedError extends ProductError {
  constructor(jobId: string, approvers: string[]) {
    super(
      'ApprovalNotAllowedError',
      `Approvals of job ${jobId} are answered by the operator and the approvers in the config (approvals.approvers: ${approvers.join(', ') || 'none'}); ask one of them.`,
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
  const { logCount, uncertainCalls, uncertainKeys, ...summary } = jobSummary(from);
  return {
    ...summary,
    log_count: logCount,
    ...(uncertainCalls ? { uncertain_calls: uncertainCalls } : {}),
    ...(uncertainKeys ? { uncertain_keys: uncertainKeys } : {}),
  };
}

const PAGE_SIZE = 20;

/** A page of jobs (MCP tasks/list). */
export interface JobPage {
  jobs: Array<{ job_id: string; status: JobStatus; started: string; closed?: string }>;
  nextCursor?: string;
}

/** What an answer says when it has no summary to give (a cancelled job, no worker answering). */
const NO_SUMMARY: SummaryView = { progress: null, logs: [], log_count: 0 };

export interface ExecuteRequest {
  code: string;
  input?: unknown;
  waitSeconds?: number;
  /** The agent's short name for the job: the start of its id and its summary. */
  name?: string;
  /** "batched": every provider's calls run in batched mode for this job (see Durability). */
  durability?: Durability;
}

export interface JobServiceOptions {
  /** With privacy on, what the Temporal UI shows of a job (id, summary, details) carries tokens. */
  privacy?: Privacy;
  /** How the front end names its actions in advice (MCP tools by default). */
  wording?: JobWording;
}

/** What an operator reads about a job besides its status: what it does, whose it is, when it ran. */
export interface JobInfo {
  job_id: string;
  summary: string;
  owner: string | null;
  status: JobStatus;
  started: string;
  closed: string | null;
}

/** The parts of the config the job service uses. */
export interface JobSettings {
  temporal: TemporalConfig;
  limits: SandboxLimits;
  providers: ProvidersConfig;
  maxEventsPerRun: number;
  batchFlush: BatchFlush;
  defaultWaitSeconds: number;
  /** Where large scripts and inputs go: the blob store the workers read. */
  blobs: BlobsConfig;
  dataDir: string;
  approvals: ApprovalsConfig;
}

/** Called while a wait lasts: about every WATCH_INTERVAL_MS with the job's current view (progress notifications). */
export type JobWatcher = (view: JobView) => void | Promise<void>;

/** An answer to a job's pending approvals, as an agent or a person gives it. */
export interface ApprovalReply {
  approved: boolean;
  /** One pending approval; without it, every pending one. */
  id?: string;
  note?: string;
  /** How it came (mcp, cli): recorded with the answer. */
  via: string;
}

/**
 * A wait never lasts longer than this, whatever the caller asks: MCP clients give up on a request
 * after their own timeout (60 s in the TypeScript SDK), and the answer must reach them first, with
 * the job id. Reading the job's state after the wait takes up to STATE_QUERY_MS more (a busy
 * worker answers queries slowly), so an answer leaves within about 50 s.
 */
export const MAX_WAIT_SECONDS = 45;
/** How long a read of the job's live state (a query its worker answers) may take. */
const STATE_QUERY_MS = 5_000;
/** How often a watched wait reads the job's state. */
const WATCH_INTERVAL_MS = 1_000;
const STATIC_DETAILS_MAX_CHARS = 20_000;
/** A new job's random id part colliding with an existing job's is astronomically rare; retried anyway. */
const NEW_ID_TRIES = 3;

/**
 * Every method acts for one principal: it starts jobs owned by that principal, and a job owned by
 * anyone else looks exactly like a job that does not exist. The operator (the default: CLI, stdio)
 * sees all jobs.
 */
export class JobService {
  private readonly client: Client;
  private readonly config: JobSettings;
  readonly principal: Principal;
  private readonly wording: JobWording;
  /** With privacy on, jobs restore tokens in their requests, and their id, summary and details in the Temporal UI show tokens. */
  private readonly privacy: Privacy | undefined;
  /** Shared by the service's copies for each principal; the blob store is opened on first use. */
  private readonly shared: { claims?: ClaimCheck; blobs?: BlobStore };

  constructor(
    client: Client,
    config: JobSettings,
    principal: Principal = OPERATOR,
    options: JobServiceOptions = {},
    shared: { claims?: ClaimCheck; blobs?: BlobStore } = {},
  ) {
    this.client = client;
    this.config = config;
    this.principal = principal;
    this.wording = options.wording ?? MCP_WORDING;
    this.privacy = options.privacy;
    this.shared = shared;
  }

  /** Text that shows outside the job (ids, summaries, the Temporal UI): tokenized when privacy is on. */
  private async shown(owner: string, text: string): Promise<string> {
    return this.privacy ? this.privacy.tokenizeText(owner, text) : text;
  }

  /** The same service acting for `principal`. */
  as(principal: Principal): JobService {
    return new JobService(
      this.client,
      this.config,
      principal,
      { wording: this.wording, privacy: this.privacy },
      this.shared,
    );
  }

  /** What a job may use; the transports size their requests by it. */
  get limits(): SandboxLimits {
    return this.config.limits;
  }

  /** Large scripts and inputs travel by reference (claim check), like every large value of a job. */
  private claims(): ClaimCheck {
    return (this.shared.claims ??= new ClaimCheck(this.blobStore(), this.config.blobs.thresholdBytes));
  }

  /** The blob store workers share (large values, the jobs' each() ledgers), opened on first use. */
  private blobStore(): BlobStore {
    return (this.shared.blobs ??= createBlobStore(this.config.blobs, this.config.dataDir));
  }

  /** Validates and starts a script, then waits up to `waitSeconds` for it to finish. */
  async execute(request: ExecuteRequest, watch?: JobWatcher): Promise<JobView> {
    const since = Date.now();
    const jobId = await this.startScript(request);
    return this.status(jobId, request.waitSeconds ?? this.config.defaultWaitSeconds, watch, since);
  }

  /** Validates and starts a script as a new job; answers its id at once. */
  async startScript(request: Omit<ExecuteRequest, 'waitSeconds'>): Promise<string> {
    await this.validate(request.code);
    checkInputSize(request.input, this.config.limits);
    const summary = summarize(request.code, request.name);
    // The id shows everywhere: no personal data in it either.
    const idSource = await this.shown(this.principal.name, jobIdSource(request.code, request.name));
    for (let tries = 1; ; tries++) {
      const job = await this.claims().offloadJob({
        jobId: newJobId(idSource),
        code: request.code,
        input: request.input as JobInput['input'],
        limits: this.config.limits,
        retry: Object.fromEntries(Object.entries(this.config.providers).map(([name, p]) => [name, p.retry])),
        attempt: 1,
        maxEventsPerRun: this.config.maxEventsPerRun,
        owner: this.principal.name,
        ...(this.privacy?.enabled ? { privacy: true } : {}),
        approvals: {
          rules: Object.fromEntries(
            Object.entries(this.config.providers).flatMap(([name, p]) => (p.approval ? [[name, p.approval]] : [])),
          ),
          timeoutSeconds: this.config.approvals.timeoutSeconds,
        },
        batched: Object.keys(this.config.providers).filter(
          (name) => request.durability === 'batched' || this.config.providers[name].durability === 'batched',
        ),
        batchFlush: this.config.batchFlush,
      });
      try {
        await this.start({ job }, request.code, summary, this.principal.name, 'REJECT_DUPLICATE');
      } catch (e) {
        if (e instanceof WorkflowExecutionAlreadyStartedError && tries < NEW_ID_TRIES) continue;
        throw e;
      }
      return job.jobId;
    }
  }

  /**
   * Starts the next attempt of a failed or cancelled job under the same id, or of a completed one whose
   * each() calls left failed items. It replays the previous attempt's journal as far as the
   * (optionally corrected) code agrees with it, then runs live; each() skips the items earlier
   * attempts did, whatever the code. `input` replaces the job's input (e.g. the failed rows, fixed).
   */
  async resume(
    jobId: string,
    code?: string,
    waitSeconds = this.config.defaultWaitSeconds,
    input?: unknown,
    watch?: JobWatcher,
  ): Promise<JobView> {
    const since = Date.now();
    await this.restart(jobId, code, input);
    return this.status(jobId, waitSeconds, watch, since);
  }

  /** Starts the next attempt of a job (see resume), with a corrected script or input; answers once it is started. */
  async restart(jobId: string, code?: string, input?: unknown): Promise<void> {
    const next = await this.nextAttempt(jobId, code, input);
    const { job } = next.input;
    try {
      // The same id: ALLOW_DUPLICATE starts the next run of this (closed) workflow.
      await this.start(next.input, next.script, next.summary, next.owner, 'ALLOW_DUPLICATE');
    } catch (e) {
      if (e instanceof WorkflowExecutionAlreadyStartedError)
        throw new JobStateError(
          `Job ${jobId} is already being resumed: another job_resume started attempt ${job.attempt} a moment ago. ${this.wording.follow}`,
        );
      throw e;
    }
  }

  /**
   * What resuming the job (see resume) would do, answered before anything is written: the rounds of
   * its journal that replay, where the (corrected) script stops agreeing, the first round that would
   * write, and each() items it would skip, retry and run for the first time. A worker runs it
   * (activities/preview.ts), under a workflow of its own: only reads (GET, HEAD) past the journal
   * are sent, and the job is left exactly as it was.
   */
  async preview(jobId: string, code?: string, input?: unknown): Promise<ResumePreviewView> {
    const { input: next } = await this.nextAttempt(jobId, code, input);
    const args: PreviewResumeArgs = {
      job: next.job,
      now: Date.now(),
      ...(next.previous ? { previous: next.previous } : {}),
    };
    let preview: ResumePreview;
    try {
      preview = await this.client.workflow.execute<typeof previewResume>('previewResume', {
        taskQueue: this.config.temporal.taskQueue,
        workflowId: `${jobId}-preview-${randomUUID().slice(0, 8)}`,
        args: [args],
        workflowExecutionTimeout: '35 minutes',
      });
    } catch (e) {
      // The worker's own reason (a missing journal blob, say), not Temporal's wrapping of it.
      if (e instanceof WorkflowFailedError) throw new Error(`The preview failed: ${innermost(e).message}`);
      throw e;
    }
    const { reads_sent } = preview;
    return {
      job_id: jobId,
      attempt: next.job.attempt,
      ...preview,
      note: `A preview: nothing was written${reads_sent ? `; ${reads_sent} read(s) (GET, HEAD) were sent to compute it` : ', nothing sent'}. ${this.wording.resume}`,
    };
  }

  /** The next attempt of a job as job_resume starts it (and its preview shows it), after checking the job may be resumed. */
  private async nextAttempt(
    jobId: string,
    code?: string,
    input?: unknown,
  ): Promise<{ input: DurableScriptInput; script: string; summary: string; owner: string }> {
    const handle = this.client.workflow.getHandle<typeof durableScript>(jobId);
    const description = await this.describe(handle, jobId);
    const status = description.status.name;
    if (status === 'RUNNING')
      throw new JobStateError(
        `Job ${jobId} is still running; only a failed or cancelled job can be resumed. ${this.wording.stopFirst}`,
      );
    const completed = status === 'COMPLETED';
    if (completed && !(await this.leftFailedItems(handle)))
      throw new JobStateError(
        `Job ${jobId} completed; there is nothing to resume (no item of its each() calls failed). ${this.wording.startNew}`,
      );
    // A completed job left no journal: its next attempt runs from the start, and each() skips what was done.
    const memo = description.memo?.[RESUME_MEMO_KEY] as ResumeMemo | undefined;
    if (!memo && !completed) {
      throw new JobStateError(
        `Job ${jobId} left no journal to resume from (it was ${status.toLowerCase()} before it could save one, e.g. terminated by an operator). ${this.wording.startNew}`,
      );
    }
    if (code !== undefined) await this.validate(code);
    if (input !== undefined) checkInputSize(input, this.config.limits);
    const { job: previous } = await this.inputOf(handle);
    // The input stays as it was (inline or by reference); the script is the corrected one, or the same.
    const { code: previousCode, codeRef: _previousRef, ...kept } = previous;
    const script = code ?? previousCode ?? (await this.claims().script(previous));
    const owner = (description.memo?.[OWNER_MEMO_KEY] as string | undefined) ?? this.principal.name;
    // A corrected input replaces the previous one (inline or by reference).
    const { input: previousInput, inputRef, ...rest } = kept;
    const job = await this.claims().offloadJob({
      ...rest,
      ...(input === undefined
        ? { input: previousInput, ...(inputRef ? { inputRef } : {}) }
        : { input: input as JobInput['input'] }),
      code: script,
      attempt: previous.attempt + 1,
      resume: memo?.checkpoint,
      owner,
    });
    const summary = (description.memo?.[SUMMARY_MEMO_KEY] as string | undefined) ?? summarize(script);
    return { input: { job, ...(memo ? { previous: memo.journal } : {}) }, script, summary, owner };
  }

  /** Whether the completed job's each() calls left failed or uncertain items (its result's ledger counts). */
  private async leftFailedItems(handle: WorkflowHandle<typeof durableScript>): Promise<boolean> {
    const result = await handle.result();
    return Object.values(result.ledger?.counts ?? {}).some((c) => c.failed + c.uncertain > 0);
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

  /**
   * Starts a run of the job's workflow: the owner, summary and attempt where the Temporal UI and
   * `jobs list` show them (memo, search attributes), so "alice's jobs" is a filter from the start.
   * A job already running under the id passes through as WorkflowExecutionAlreadyStartedError; any
   * other failure is said with its cause and what to do.
   */
  private async start(
    input: DurableScriptInput,
    code: string,
    summary: string,
    owner: string,
    workflowIdReusePolicy: WorkflowIdReusePolicy,
  ): Promise<void> {
    const searchAttributes: SearchAttributePair[] = [
      { key: OWNER, value: owner },
      { key: ATTEMPT, value: input.job.attempt },
      { key: PHASE, value: 'running' },
    ];
    // The summary and details show in the Temporal UI (undecoded without a codec): tokens there too.
    const shown = (text: string) => this.shown(owner, text);
    try {
      await this.client.workflow.start<typeof durableScript>('durableScript', {
        taskQueue: this.config.temporal.taskQueue,
        workflowId: input.job.jobId,
        workflowIdReusePolicy,
        args: [input],
        workflowTaskTimeout: workflowTaskTimeoutMs(input.job.maxEventsPerRun),
        memo: { [OWNER_MEMO_KEY]: owner, [SUMMARY_MEMO_KEY]: await shown(summary) },
        typedSearchAttributes: searchAttributes,
        staticSummary: await shown(input.job.attempt > 1 ? `${summary} (attempt ${input.job.attempt})` : summary),
        staticDetails: await shown('```js\n' + code.slice(0, STATIC_DETAILS_MAX_CHARS) + '\n```'),
      });
    } catch (e) {
      if (e instanceof WorkflowExecutionAlreadyStartedError) throw e;
      if (/search attribute/i.test((e as Error).message))
        throw new JobStartError(
          `Temporal refused the job's search attributes (${(e as Error).message}), so no job was started. Register them on namespace "${this.config.temporal.namespace}" once: ` +
            `node deploy/temporal-namespace.ts, or ${registerCommands()}`,
          e,
        );
      throw startFailure(e, this.config.temporal);
    }
  }

  /** The input of the job's latest run (every run carries the whole job), decrypted when a codec is set. */
  private async inputOf(handle: WorkflowHandle): Promise<DurableScriptInput> {
    // The input is in the run's first event: read that one, not the whole history (a run of an
    // import holds 1,000 events, and every failures page needs the input's attempt).
    const { history } = await this.client.workflowService.getWorkflowExecutionHistory({
      namespace: this.config.temporal.namespace,
      execution: { workflowId: handle.workflowId },
      maximumPageSize: 1,
    });
    let payload = history?.events?.[0]?.workflowExecutionStartedEventAttributes?.input?.payloads?.[0];
    if (!payload) throw new Error(`cannot read the input of job ${handle.workflowId} from its history`);
    const { payloadCodecs, payloadConverter } = this.client.options.loadedDataConverter;
    for (const codec of [...payloadCodecs].reverse()) [payload] = await codec.decode([payload]);
    return payloadConverter.fromPayload<DurableScriptInput>(payload);
  }

  /** The job's status now, with the times it started and (when it has ended) closed. */
  async snapshot(jobId: string): Promise<{ view: JobView; startedAt: Date; closedAt?: Date }> {
    const handle = this.client.workflow.getHandle<typeof durableScript>(jobId);
    const description = await this.describe(handle, jobId);
    const view =
      description.status.name === 'RUNNING'
        ? await this.runningView(handle, jobId)
        : await this.finishedView(handle, jobId);
    return { view, startedAt: description.startTime, closedAt: description.closeTime };
  }

  /**
   * The job's status, waiting up to `waitSeconds` for it to finish first, but never past
   * MAX_WAIT_SECONDS after `since` (when the caller's request came in); `watch` sees its view about
   * every second while it waits.
   */
  async status(jobId: string, waitSeconds = 0, watch?: JobWatcher, since = Date.now()): Promise<JobView> {
    const handle = this.client.workflow.getHandle<typeof durableScript>(jobId);
    let status = await this.describeStatus(handle, jobId);
    const waitMs = Math.min(waitSeconds * 1000, since + MAX_WAIT_SECONDS * 1000 - Date.now());
    if (status === 'RUNNING' && waitMs > 0) {
      const ended = await this.waitForResult(handle, jobId, waitMs, watch);
      // The wait saw the job end and has its result: no second read of the job for the answer.
      if (ended) return this.finishedView(handle, jobId, ended);
      status = await this.describeStatus(handle, jobId);
    }
    if (status === 'RUNNING') return this.runningView(handle, jobId);
    return this.finishedView(handle, jobId);
  }

  /**
   * Answers the job's pending approvals (one by `id`, or all) through the workflow's
   * `answerApproval` Update, recording this principal; answers the job's status after.
   */
  async answer(jobId: string, reply: ApprovalReply): Promise<JobView> {
    const handle = this.client.workflow.getHandle(jobId);
    const description = await this.describe(handle, jobId);
    if (!this.mayAnswer(description.memo))
      throw new ApprovalNotAllowedError(jobId, this.config.approvals.approvers ?? []);
    if (description.status.name !== 'RUNNING') {
      const view = await this.finishedView(handle, jobId);
      throw new JobStateError(`Job ${jobId} has ended (${view.status}); it waits for no approval.`);
    }
    const answer: ApprovalAnswer = { ...reply, by: this.principal.name };
    try {
      await handle.executeUpdate(ANSWER_APPROVAL, { args: [answer] });
    } catch (e) {
      // The workflow's validator refused it (nothing pending, an unknown id): its message says why.
      if (e instanceof WorkflowUpdateFailedError) throw new JobStateError(e.cause?.message ?? e.message);
      throw e;
    }
    return this.status(jobId);
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

  /** The newest jobs the principal may see, one row each. */
  async list(filter: ListFilter = { limit: 20 }): Promise<JobRow[]> {
    return listJobs(this.client, this.config.temporal.taskQueue, (memo) => this.owns(memo), filter);
  }

  /** What the job does, whose it is and when it ran (its status view says how far it got). */
  async info(jobId: string): Promise<JobInfo> {
    const description = await this.describe(this.client.workflow.getHandle(jobId), jobId);
    const memo = description.memo ?? {};
    return {
      job_id: jobId,
      summary: (memo[SUMMARY_MEMO_KEY] as string | undefined) ?? (await description.staticSummary()) ?? '',
      owner: (memo[OWNER_MEMO_KEY] as string | undefined) ?? null,
      status: jobStatusOf(description.status.name),
      started: description.startTime.toISOString(),
      closed: description.closeTime?.toISOString() ?? null,
    };
  }

  /** The job's each() ledger across its attempts, each item's latest entry (read like any job: its owner only). */
  async ledger(jobId: string): Promise<JobLedger> {
    const handle = this.client.workflow.getHandle(jobId);
    await this.describe(handle, jobId);
    const { job } = await this.inputOf(handle);
    return JobLedger.open(this.blobStore(), jobId, job.attempt);
  }

  /** Page `page` (1-based) of the job's failed and uncertain each() items, FAILURES_PER_PAGE at a time. */
  async failures(jobId: string, page: number): Promise<FailuresPage> {
    const ledger = await this.ledger(jobId);
    const { entries, total } = await ledger.failures((page - 1) * FAILURES_PER_PAGE, FAILURES_PER_PAGE);
    const pages = Math.max(1, Math.ceil(total / FAILURES_PER_PAGE));
    if (!Number.isInteger(page) || page < 1 || page > pages)
      throw new ProductError(
        'ResultPageError',
        `Job ${jobId} has ${total} failed item${total === 1 ? '' : 's'} in ${pages} page${pages === 1 ? '' : 's'}: ask for failures page 1${pages > 1 ? ` to ${pages}` : ''}, not ${page}.`,
      );
    return { job_id: jobId, failures_page: page, failures_pages: pages, failures_total: total, failures: entries };
  }

  /**
   * One page of this principal's jobs, newest first, one entry per job (its latest run); `cursor` is
   * the previous page's `nextCursor`.
   */
  async page(cursor?: string, size = PAGE_SIZE): Promise<JobPage> {
    const skip = cursor ? Number.parseInt(cursor, 10) || 0 : 0;
    const jobs: JobPage['jobs'] = [];
    let seen = 0;
    for await (const info of this.client.workflow.list({
      // This deployment's jobs (its task queue): another's may be sealed with a codec key this one lacks.
      query: `WorkflowType = 'durableScript' AND ExecutionStatus != 'ContinuedAsNew' AND TaskQueue = '${this.config.temporal.taskQueue}'`,
    })) {
      if (!this.owns(info.memo)) continue;
      if (seen++ < skip) continue;
      if (jobs.length === size) return { jobs, nextCursor: String(skip + size) };
      jobs.push({
        job_id: info.workflowId,
        status: listedStatusOf(info),
        started: info.startTime.toISOString(),
        closed: info.closeTime?.toISOString(),
      });
    }
    return { jobs };
  }

  private async describeStatus(handle: WorkflowHandle, jobId: string): Promise<string> {
    return (await this.describe(handle, jobId)).status.name;
  }

  /** Describes the job, or answers "not found" when it does not exist or this principal may not see it. */
  private async describe(handle: WorkflowHandle, jobId: string) {
    let description;
    try {
      description = await handle.describe();
    } catch (e) {
      if (e instanceof WorkflowNotFoundError)
        throw new JobNotFoundError(jobId, this.config.temporal.namespace, this.wording.findId);
      throw e;
    }
    if (!this.owns(description.memo))
      throw new JobNotFoundError(jobId, this.config.temporal.namespace, this.wording.findId);
    return description;
  }

  /** Owners and the operator see a job; so do the configured approvers (they must read what they approve). */
  private owns(memo: Record<string, unknown> | undefined): boolean {
    return this.principal.seesAll || memo?.[OWNER_MEMO_KEY] === this.principal.name || this.isApprover();
  }

  private isApprover(): boolean {
    return this.config.approvals.approvers?.includes(this.principal.name) ?? false;
  }

  /** The operator answers always; otherwise the approvers when the config lists them, else the job's owner. */
  private mayAnswer(memo: Record<string, unknown> | undefined): boolean {
    if (this.principal.seesAll) return true;
    if (this.config.approvals.approvers) return this.isApprover();
    return memo?.[OWNER_MEMO_KEY] === this.principal.name;
  }

  /**
   * Waits for the workflow to close, or `ms`, whichever is first; the long poll is aborted either
   * way. With `watch`, the job's view is read and handed to it about every WATCH_INTERVAL_MS.
   * Answers how the job ended, or undefined when the wait ran out or the result could not be read
   * (then the caller describes the job again).
   */
  private async waitForResult(
    handle: WorkflowHandle<typeof durableScript>,
    jobId: string,
    ms: number,
    watch?: JobWatcher,
  ): Promise<JobEnd | undefined> {
    const abort = new AbortController();
    const deadline = Date.now() + ms;
    const closed = this.client
      .withAbortSignal(abort.signal, () => handle.result())
      .then(
        (result): JobEnd => ({ result }),
        (e: unknown): JobEnd | 'unread' => (e instanceof WorkflowFailedError ? { failure: e } : 'unread'),
      );
    try {
      for (;;) {
        const left = deadline - Date.now();
        if (left <= 0) return undefined;
        const tick = delay(watch ? Math.min(WATCH_INTERVAL_MS, left) : left, 'tick' as const, {
          signal: abort.signal,
        }).catch(() => 'tick' as const);
        const next = await Promise.race([closed, tick]);
        if (next === 'unread') return undefined;
        if (next !== 'tick') return next;
        // Near the end, no more reads: the answer's own read of the state comes next.
        // A read while waiting never runs past the wait's end: the answer's own read comes after it.
        if (watch && deadline - Date.now() > WATCH_INTERVAL_MS)
          await watch(await this.runningView(handle, jobId, Math.min(Date.now() + STATE_QUERY_MS, deadline)));
      }
    } finally {
      abort.abort();
    }
  }

  /** A running job's view from its live state, or without one if no worker answers by `queryDeadline`. */
  private async runningView(
    handle: WorkflowHandle,
    jobId: string,
    queryDeadline = Date.now() + STATE_QUERY_MS,
  ): Promise<JobView> {
    try {
      const state = await this.client.withDeadline(queryDeadline, () => handle.query<JobState>('jobState'));
      const waiting = (state.approvals?.pending.length ?? 0) > 0;
      return { job_id: jobId, status: waiting ? 'waiting_for_approval' : 'running', ...summaryView(state) };
    } catch {
      return {
        job_id: jobId,
        status: 'running',
        ...NO_SUMMARY,
        note: 'No worker answered the progress query; the job will continue when a worker (`durable-codemode worker`) is running.',
      };
    }
  }

  private async finishedView(
    handle: WorkflowHandle<typeof durableScript>,
    jobId: string,
    ended?: JobEnd,
  ): Promise<JobView> {
    const end =
      ended ??
      (await handle.result().then(
        (result): JobEnd => ({ result }),
        (e: unknown): JobEnd => {
          if (e instanceof WorkflowFailedError) return { failure: e };
          throw e;
        },
      ));
    if ('result' in end) {
      const { result } = end;
      return { job_id: jobId, status: 'completed', ...summaryView(result), result: result.value };
    }
    const view = failureView(jobId, end.failure);
    if (view.status !== 'cancelled') return view;
    // A cancelled job's summary, and what it had in flight, are in the memo it left for job_resume.
    const memo = (await handle.describe()).memo?.[RESUME_MEMO_KEY] as ResumeMemo | undefined;
    if (!memo?.summary) return view;
    return { ...view, ...summaryView(memo.summary), ...(memo.inFlight?.length ? { in_flight: memo.inFlight } : {}) };
  }
}

/** How an ended job's workflow closed: its result, or the failure its result() threw. */
type JobEnd = { result: JobResult } | { failure: WorkflowFailedError };

function failureView(jobId: string, e: WorkflowFailedError): JobView {
  const cause = e.cause;
  if (cause instanceof CancelledFailure || cause instanceof TerminatedFailure || cause instanceof TimeoutFailure) {
    const how =
      cause instanceof CancelledFailure
        ? 'cancelled'
        : cause instanceof TerminatedFailure
          ? 'terminated by an operator'
          : 'timed out';
    // A workflow that saw its cancellation reports how far it got (its details); a terminated one cannot.
    const summary = cause instanceof CancelledFailure ? JobSummary.safeParse(cause.details?.[0]) : undefined;
    return {
      job_id: jobId,
      status: 'cancelled',
      ...(summary?.success ? summaryView(summary.data) : NO_SUMMARY),
      note: `The job was ${how}.`,
    };
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

/** The Temporal CLI commands that register the jobs' search attributes. */
function registerCommands(): string {
  return SEARCH_ATTRIBUTES.map(
    (key) => `temporal operator search-attribute create --name ${key.name} --type ${CLI_TYPE_NAMES[key.type]}`,
  ).join('; ');
}

/** The deepest cause of a failure: what went wrong, under Temporal's wrappings. */
function innermost(e: Error): Error {
  let inner = e;
  while (inner.cause instanceof Error) inner = inner.cause;
  return inner;
}
