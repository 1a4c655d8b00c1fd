/**
 * The catalogue of every error a script or an agent can see: its name (the `name` of the error
 * thrown into the script, of a failed job's `error`, or of a tool answer), what it means and what
 * to do about it. Code raises these names only through this catalogue, and README lists it (a test
 * keeps the two in step).
 *
 * Errors of the operator's own making (config, credentials, ports) are not here: they stop a
 * process at start-up with a message that names the setting to fix.
 *
 * Pure data: imported by workflow code, the guest runtimes' hosts, the job service and the MCP tools.
 */

/** Who meets the error: thrown into the script (catchable), ending the job, or answering a tool call. */
export type ErrorSeenBy = 'script' | 'job' | 'tool';

export interface ErrorEntry {
  seenBy: ErrorSeenBy;
  /** What happened, in a sentence. */
  means: string;
  /** What to do about it. */
  todo: string;
}

export const ERRORS = {
  ApiError: {
    seenBy: 'script',
    means:
      "The API answered with a non-2xx status that is not worth retrying (most 4xx), or a transient failure outlasted the provider's retries. `.status` and `.body` carry the response.",
    todo: 'Catch it and branch on `.status`; fix the request for a 4xx, or raise `retry.maximumAttempts` for a flaky API.',
  },
  RequestError: {
    seenBy: 'script',
    means:
      "The request was refused before it was sent: its path leaves the provider's base URL, matches no operation of the spec, lacks a required parameter, names an unknown provider, or the provider's spec failed to load (the message says why).",
    todo: 'Look the operation up with the search tool and fix the method, path or query. The message names the closest operations. A failed spec shows in search as spec.providers.NAME.error: the operator fixes it and restarts.',
  },
  PrivacyTokenError: {
    seenBy: 'script',
    means:
      "The request carries a privacy token (such as `[EMAIL_7]`) that this principal's vault does not hold: unknown, expired, purged, or another principal's. Nothing was sent.",
    todo: 'Use tokens from your own recent answers; if it expired, look the record up again (the answer shows a fresh token).',
  },
  ToolError: {
    seenBy: 'script',
    means: "An upstream MCP server's tool reported an error, or refused the call (unknown tool, invalid arguments).",
    todo: "Catch it; check the tool's inputSchema with the search tool (`spec.tools`).",
  },
  TooManyFailuresError: {
    seenBy: 'script',
    means:
      'More items of an `each()` failed (or were left uncertain) than its `options.maxFailures` allows, so it stopped starting new ones. The message names the first failure.',
    todo: 'Read the failures (the job tool, or `durable-codemode jobs ledger JOB_ID --failed`), fix the data or the script, then job_resume: items already done are not sent again.',
  },
  UncertainCallError: {
    seenBy: 'script',
    means:
      'A write of an `each()` with `options.reconcile` may have been applied: the worker that sent it was lost before any answer, so it was not sent again blindly.',
    todo: '`each()` handles it: `reconcile(item)` decides whether the item already landed, and the item runs again if not. An item whose reconcile failed stays `uncertain` in the ledger; job_resume reconciles it first.',
  },
  ApprovalDeniedError: {
    seenBy: 'script',
    means:
      'A human denied the approval the script asked for with `approve()`, or that the approval policy required before a call (which was then not made), or nobody answered in time. `.by` and `.note` say who and why.',
    todo: 'Catch it and skip or undo that part of the work; the job goes on. Ask again with a clearer question if it timed out.',
  },
  ReplayDivergenceError: {
    seenBy: 'job',
    means:
      'Replaying the journal, the script asked for a different call or step than when the job first ran, so its recorded results cannot be trusted.',
    todo: 'Make the script deterministic: use `input`, `step()` and the journaled `Date.now()`/`Math.random()`, never outside state.',
  },
  EffectLimitError: {
    seenBy: 'job',
    means:
      'The script started more API calls or sleeps at once than `limits.maxEffectsPerRound`, or more in total than `limits.maxEffectsPerJob`.',
    todo: 'Batch the work (await chunks of Promise.all), split it into several jobs, or raise the limit.',
  },
  JobTimeLimitError: {
    seenBy: 'job',
    means: 'The attempt ran longer than `limits.maxJobSeconds`; what it was waiting on was cancelled.',
    todo: 'Resume it with job_resume to continue from its journal, or split the work into smaller jobs.',
  },
  MemoryLimitError: {
    seenBy: 'job',
    means: 'The sandbox ran out of its memory limit (`limits.memoryMb`; the search sandbox has its own).',
    todo: 'Process data in smaller pieces (pages, batches), or raise the limit.',
  },
  TimeLimitError: {
    seenBy: 'job',
    means:
      'The script computed for longer than `limits.roundTimeoutMs` without waiting on an API call, sleep or step (or a search ran too long).',
    todo: 'Look for an endless loop, or raise the limit.',
  },
  ResultTooLargeError: {
    seenBy: 'job',
    means: 'The script returned more than `limits.maxResultBytes` of JSON.',
    todo: 'Return a summary (counts, ids, a sample) instead of the data.',
  },
  StepError: {
    seenBy: 'job',
    means:
      'A `step(name, fn)` was still waiting when the script went idle: its function awaited an API call or a sleep.',
    todo: 'Make API calls and sleeps outside `step()` and pass their results in.',
  },
  StuckScriptError: {
    seenBy: 'job',
    means: 'The script awaits a promise that no API call, sleep or step will ever settle.',
    todo: 'Await only what the script started; do not wait on hand-made promises.',
  },
  SandboxReportError: {
    seenBy: 'job',
    means:
      "The sandbox's report of a round was refused: the script replaced built-ins the runtime relies on, or passed a value nested too deeply.",
    todo: 'Do not overwrite JSON, Object.prototype.toJSON or Array.prototype; keep values shallower.',
  },
  BlobMissingError: {
    seenBy: 'job',
    means: 'A value the journal keeps in the blob store is gone, so the job cannot replay.',
    todo: 'Restore the blob, or point every worker at the same blob store (S3 for several machines).',
  },
  BlobCorruptError: {
    seenBy: 'job',
    means: 'A blob no longer matches its content hash.',
    todo: 'Restore it from a backup.',
  },
  ActivityError: {
    seenBy: 'job',
    means:
      "The job's own machinery (opening a sandbox, saving the journal) kept failing on the workers after its retries; the message says why.",
    todo: 'Check the workers (logs, config, blob store); once fixed, job_resume continues the job from its journal.',
  },
  ScriptSyntaxError: {
    seenBy: 'tool',
    means: 'The script does not parse; no job was started. The message gives the line and column.',
    todo: 'Fix the syntax. A script is an async arrow function, e.g. `async () => 1 + 1`.',
  },
  ScriptTooLargeError: {
    seenBy: 'tool',
    means: 'The script is larger than `limits.maxScriptBytes`; no job was started.',
    todo: 'Move data into `input`, or fetch it inside the script.',
  },
  InputTooLargeError: {
    seenBy: 'tool',
    means:
      'The `input` is larger than `limits.maxInputBytes` of JSON (or the request carrying it is larger than any request with an input within the limit); no job was started.',
    todo: 'Pass less data: have the script fetch it from an API, or split the work into several jobs; or raise `limits.maxInputBytes`.',
  },
  JobStartError: {
    seenBy: 'tool',
    means:
      "Temporal did not start the job (it could not be reached, refused the credentials or the request); the message gives Temporal's reason. No job was started.",
    todo: 'Follow the message: start or reach the Temporal server (TEMPORAL_ADDRESS), fix the namespace or credentials, then try again.',
  },
  SearchError: {
    seenBy: 'tool',
    means: 'The search function threw, returned something that is not JSON, or never settled.',
    todo: 'Fix the search code; the message gives the line. Return plain data.',
  },
  JobNotFoundError: {
    seenBy: 'tool',
    means: 'No job has this id, or it belongs to another principal (both answer the same).',
    todo: 'Use the job id returned by execute.',
  },
  JobStateError: {
    seenBy: 'tool',
    means:
      'The job is not in a state that allows this, e.g. resuming a job that is still running, or paging the result of a job that has not completed.',
    todo: 'Follow the message: wait for the job, cancel it first, or start a new one.',
  },
  InvalidArgumentsError: {
    seenBy: 'tool',
    means:
      'The call does not fit the tool: an unknown tool or argument, or an argument missing or of the wrong type. Nothing was done.',
    todo: 'Call a listed tool with the arguments its input schema names; the message lists the accepted ones.',
  },
  ServiceError: {
    seenBy: 'tool',
    means:
      'The server could not do what was asked: Temporal, a worker or the blob store did not answer as expected. Nothing about the script is wrong.',
    todo: 'Try again in a moment; if it keeps failing, the message tells the operator what to fix.',
  },
  ApprovalNotAllowedError: {
    seenBy: 'tool',
    means:
      'This principal may see the job but not answer its approvals: the config lists approvers (`approvals.approvers`), and it is not one of them.',
    todo: 'Ask one of the listed approvers or the operator to answer.',
  },
  ResultPageError: {
    seenBy: 'tool',
    means: "The page asked for is beyond the stored result's pages (or the pages of the job's failed items).",
    todo: 'Ask for a page from 1 to `result_pages` (`failures_pages` for failures).',
  },
  BlobStoreUnavailableError: {
    seenBy: 'tool',
    means:
      'The blob store cannot be reached: its directory is gone or unreadable, the disk fails, or the S3 server does not answer or refuses the credentials. Running jobs wait for it; the call that needed it did nothing.',
    todo: 'Bring the store back (restore the directory, start the S3 server, fix the credentials), then retry the call.',
  },
  PrivacyVaultError: {
    seenBy: 'tool',
    means:
      "The privacy vault (tokens and the personal data they stand for) or a job's public values (`privacy.providers.public`) could not be opened: it was sealed with another codec key or none, or a record was altered. The answer was withheld rather than sent with personal data in it.",
    todo: 'The operator sets the same DURABLE_CODEMODE_CODEC_KEY on every process (the message names the key ids), or purges the vault.',
  },
} as const satisfies Record<string, ErrorEntry>;

export type ErrorName = keyof typeof ERRORS;

export const ERROR_NAMES = Object.keys(ERRORS) as ErrorName[];

/** Whether `name` is one of the catalogue's (e.g. the type of a failure that crossed a process boundary). */
export function isErrorName(name: unknown): name is ErrorName {
  return typeof name === 'string' && Object.hasOwn(ERRORS, name);
}

/** An error as it crosses a boundary (into the script, into a failed job's `error`): name and message. */
export interface CataloguedError {
  name: ErrorName;
  message: string;
}

/** The one way product code names an error it raises: `productError('EffectLimitError', '...')`. */
export function productError(name: ErrorName, message: string): CataloguedError {
  return { name, message };
}

/** A catalogued error as a host-side exception (job service, search, syntax checks). */
export class ProductError extends Error {
  declare readonly name: ErrorName;
  constructor(name: ErrorName, message: string, options?: ErrorOptions) {
    super(message, options);
    Object.defineProperty(this, 'name', { value: name, enumerable: false, configurable: true, writable: true });
  }
}

/**
 * Failure types that pass only between activities and the workflow, never to a script or an agent
 * (so they are not in the catalogue): the workflow handles each before anything is shown.
 */
export const INTERNAL_FAILURES = {
  /** advanceSession found no live session for the job on this worker: the workflow replays the journal elsewhere. */
  SessionLost: 'SessionLost',
  /** A round offered to the worker that ran the workflow task (runRoundHere) is for a session another worker holds. */
  SessionElsewhere: 'SessionElsewhere',
  /** A call met a failure worth retrying (connection, 408, 425, 429, 5xx): Temporal retries it, then the script gets an ApiError. */
  TransientHttpError: 'TransientHttpError',
  /** An activity attempt that Temporal may already have given up (its worker was frozen or starved): it sent nothing. */
  StaleAttempt: 'StaleAttempt',
} as const;

/** What a TransientHttpError failure carries from the activity to the workflow (its ApplicationFailure details[0]). */
export interface TransientHttpDetails {
  /** The HTTP status, when the API answered at all. */
  status?: number;
}

/** Reads the status back from an ApplicationFailure's details (the workflow's side of TransientHttpDetails). */
export function transientHttpStatus(details: readonly unknown[] | null | undefined): number | undefined {
  const first = details?.[0] as TransientHttpDetails | null | undefined;
  return typeof first?.status === 'number' ? first.status : undefined;
}
