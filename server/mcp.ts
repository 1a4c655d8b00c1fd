/**
 * The MCP tool surface: `search` and `execute`, `job` (status, cancel, approve, deny) and
 * `job_resume`. All definitions together stay within 1,000 tokens however many providers and
 * operations are configured: the specs are reached through code, never listed. `execute` and
 * `job_resume` also run as MCP tasks (server/tasks.ts); every wait sends progress notifications
 * when the request asks for them (server/progress.ts).
 */
import type { CreateTaskResult } from '@modelcontextprotocol/sdk/experimental/tasks/types.js';
import { McpServer, type RegisteredTool } from '@modelcontextprotocol/sdk/server/mcp.js';
import type { RequestHandlerExtra } from '@modelcontextprotocol/sdk/shared/protocol.js';
import {
  CallToolRequestSchema,
  type CallToolResult,
  ErrorCode,
  McpError,
  type ServerNotification,
  type ServerRequest,
} from '@modelcontextprotocol/sdk/types.js';
import { getParseErrorMessage } from '@modelcontextprotocol/sdk/server/zod-compat.js';
import { z } from 'zod';
import { closest } from '../core/config-object.ts';
import { ERRORS, type ErrorName, isErrorName } from '../core/errors.ts';
import { PRODUCT_VERSION } from '../core/version.ts';
import type { Privacy } from '../privacy/privacy.ts';
import type { SpecSearch } from '../sandbox/search.ts';
import { type JobService, type JobView, type JobWatcher, MAX_WAIT_SECONDS } from '../jobs/service.ts';
import { jsonText, type ResultBudget } from './budget.ts';
import { ProgressReporter } from './progress.ts';
import { JobTaskStore, taskOf } from './tasks.ts';

export interface McpDeps {
  jobs: JobService;
  /** How large an answer may be, and where results over that are stored to be paged. */
  budget: ResultBudget;
  search: SpecSearch;
  providers: string[];
  defaultWaitSeconds: number;
  /** With privacy enabled, every answer carries the caller's tokens instead of personal data. */
  privacy?: Privacy;
  /** A call the configured providers really take, for the execute description's example (see exampleCall). */
  example?: string;
}

/**
 * A tool's arguments: unknown ones are refused, naming the accepted ones (an agent that sends
 * `execute({ job_id })` learns it meant the job tool, instead of starting a job it did not want).
 */
function toolInput<Shape extends z.ZodRawShape>(tool: string, shape: Shape) {
  const accepted = Object.keys(shape);
  return z.strictObject(shape, {
    error: (issue) => {
      if (issue.code !== 'unrecognized_keys') return undefined;
      const unknown = issue.keys.map((key) => {
        const near = closest(key, accepted);
        return `"${key}"${near ? ` (did you mean "${near}"?)` : ''}`;
      });
      return `unknown argument${unknown.length > 1 ? 's' : ''} ${unknown.join(', ')}; ${tool} takes ${accepted.join(', ')}`;
    },
  });
}

export const SearchInput = toolInput('search', {
  code: z.string().describe('async () => { ... } run with the global `spec`; return only what you need'),
});

export const ExecuteInput = toolInput('execute', {
  code: z.string().describe('async () => { ... } using the API clients; return a small JSON result'),
  // Any JSON value (the protocol carries nothing else): z.json()'s recursive definition would cost
  // about 100 tokens of every tools/list.
  input: z.unknown().optional().describe("JSON value, the script's `input`"),
  wait_seconds: z.number().min(0).optional(),
  name: z.string().max(60).optional().describe('short job name, starts its id'),
});

export const JobInput = toolInput('job', {
  job_id: z.string(),
  action: z.enum(['status', 'cancel', 'approve', 'deny']).optional().describe('default status'),
  wait_seconds: z.number().min(0).optional().describe(`long-poll for the end, max ${MAX_WAIT_SECONDS}`),
  page: z.number().min(1).optional().describe('page of result_ref'),
  failures: z.number().int().min(1).optional().describe('page of failed each() items'),
  approval_id: z.string().optional(),
  note: z.string().optional(),
});

export const JobResumeInput = toolInput('job_resume', {
  job_id: z.string(),
  code: z.string().optional().describe('corrected script; omit to retry the same one'),
  input: z.unknown().optional().describe('corrected input'),
  wait_seconds: z.number().min(0).optional(),
  dry_run: z.boolean().optional().describe('preview, no writes'),
});

function searchDescription(): string {
  return [
    'Search the API specs with JS or TS code instead of reading them: `spec` = { paths: { [path]: { [method]: op } }, operations: [op], tools: [{ provider, name, description, inputSchema }], providers: { [name]: { title, paths, schemas, error? } } }, op = { provider, method, path, operationId, summary, description, tags, parameters, requestBody, responses }.',
    'Schemas read as resolved; results write each once, then { $ref } (in providers[name].schemas). types(op or tool): its request and response as TypeScript.',
    "Example: async () => Object.keys(spec.paths).filter(p => p.includes('/leads'))",
  ].join('\n');
}

function executeDescription(providers: string[], defaultWait: number, example: string | undefined): string {
  const call = example ?? `${providers[0] ?? 'api'}.request({ method: 'GET', path: '/' })`;
  return [
    'Run JS or TS against the APIs as a durable job: it survives crashes and restarts, and completed calls are never repeated.',
    `Globals: ${providers.length ? providers.join(', ') : '(no providers configured)'} — an API has .request({ method, path, query, body }) resolving to the parsed response body (non-2xx throws an error with .status and .body); an MCP server has one async function per tool (spec.tools).`,
    '`input`; `await step(name, fn)` saves fn() (pure, no calls inside) so it never reruns; `await checkpoint(state)` saves a small state, read back as `resume` by job_resume; `progress(done, total, message)`; `await sleep(ms)`; `await approve(question, details)` asks a human (denied: throws ApprovalDeniedError); `CSV.parse(text)` → row objects, `CSV.stringify(rows)`; console.log.',
    'Imports: `await each(items, fn, { key, concurrency })` records each item done or failed, never thrown; resume skips done ones. Parallel calls: `await Promise.all`. Date.now(), Math.random() are recorded.',
    `Returns the result if done within wait_seconds (default ${defaultWait}, max ${MAX_WAIT_SECONDS}), else { job_id, status, progress }: poll with the job tool.`,
    `Example: async () => { const r = await ${call}; return r; }`,
  ].join('\n');
}

/**
 * A call the configured providers take, found by a search over their specs: a GET without path
 * parameters (a list, most likely), else any operation, else an upstream MCP server's tool.
 */
export async function exampleCall(search: SpecSearch): Promise<string | undefined> {
  const found = (await search
    .run(
      `async () => {
        const ops = spec.operations ?? [];
        const op = ops.find((o) => o.method === 'GET' && !o.path.includes('{')) ?? ops[0];
        if (op) return { provider: op.provider, method: op.method, path: op.path };
        const tool = (spec.tools ?? [])[0];
        return tool ? { provider: tool.provider, tool: tool.name } : null;
      }`,
    )
    .catch(() => null)) as { provider: string; method?: string; path?: string; tool?: string } | null;
  if (!found) return undefined;
  return found.tool
    ? `${found.provider}.${found.tool}({})`
    : `${found.provider}.request({ method: '${found.method}', path: '${found.path}' })`;
}

export function createMcpServer(deps: McpDeps): McpServer {
  const toModel = modelBoundary(deps);
  const answer = (run: (scope: AnswerScope) => Promise<object>) => answerWith({ toModel }, run);
  // A job's view is tokenized before the budget cuts or pages it, so previews and pages show tokens
  // and no value is split across two pages where neither half would be recognised. The answer's
  // scope becomes the job's (its public values stay as they are in the rest of the answer too).
  const tokenized = async (view: JobView, scope: AnswerScope = { toModel }): Promise<JobView> => {
    const job = (scope.toModel = await toModel.forJob(view.job_id));
    const { result, ledger, ...rest } = view;
    const envelope = await job.json(rest);
    // The first failures carry their items (rows the script was given): data, like a result.
    const shown = ledger ? { ...envelope, ledger: await job.data(ledger) } : envelope;
    return result === undefined ? shown : { ...shown, result: await job.data(result) };
  };
  const budgeted = async (view: JobView, scope?: AnswerScope) => deps.budget.job(await tokenized(view, scope));
  const progressFor = (extra: ToolExtra) =>
    ProgressReporter.for(extra._meta, extra.sendNotification, (text) => toModel.text(text));
  const server = new McpServer(
    { name: 'durable-codemode', version: PRODUCT_VERSION },
    {
      capabilities: { tasks: { list: {}, cancel: {}, requests: { tools: { call: {} } } } },
      taskStore: new JobTaskStore(
        deps.jobs,
        (view) => tokenized(view),
        (view) => answer((scope) => budgeted(view, scope)),
      ),
    },
  );
  const tools: Record<string, DispatchedTool> = {};

  tools.search = {
    registered: server.registerTool(
      'search',
      { description: searchDescription(), inputSchema: SearchInput },
      async ({ code }) => answer(async () => deps.budget.search(await toModel.json(await deps.search.run(code)))),
    ),
  };

  tools.execute = {
    registered: server.registerTool(
      'execute',
      {
        description: executeDescription(deps.providers, deps.defaultWaitSeconds, deps.example),
        inputSchema: ExecuteInput,
      },
      async ({ code, input, wait_seconds, name }, extra) =>
        answer(async (scope) => {
          const since = Date.now();
          const progress = progressFor(extra);
          const jobId = await deps.jobs.startScript({ code, input, name });
          await progress?.started(jobId);
          const wait = wait_seconds ?? deps.defaultWaitSeconds;
          const view = await deps.jobs.status(jobId, wait, watcher(progress), since);
          return budgeted(view, scope);
        }),
    ),
    createTask: async ({ code, input, name }: { code: string; input?: unknown; name?: string }) =>
      answerTask(deps.jobs, await deps.jobs.startScript({ code, input, name }), (view) => tokenized(view)),
  };

  tools.job = {
    registered: server.registerTool(
      'job',
      {
        description:
          'A job started by execute: its status (progress, logs, pending approvals, result or error), cancel, or approve/deny its approvals (all, or approval_id).',
        inputSchema: JobInput,
      },
      async ({ job_id, action, wait_seconds, page, failures, approval_id, note }, extra) =>
        answer(async (scope) => {
          if (action === 'cancel') return budgeted(await deps.jobs.cancel(job_id), scope);
          if (action === 'approve' || action === 'deny') {
            const reply = { approved: action === 'approve', id: approval_id, note, via: 'mcp' };
            return budgeted(await deps.jobs.answer(job_id, reply), scope);
          }
          // The failed items carry the rows themselves: data, like a result.
          if (failures !== undefined) {
            scope.toModel = await toModel.forJob(job_id);
            return deps.budget.fit(await scope.toModel.data(await deps.jobs.failures(job_id, failures)));
          }
          const progress = progressFor(extra);
          const view = await deps.jobs.status(job_id, wait_seconds ?? 0, watcher(progress));
          const shown = await tokenized(view, scope);
          return page === undefined ? deps.budget.job(shown) : deps.budget.page(shown, page);
        }),
    ),
  };

  tools.job_resume = {
    registered: server.registerTool(
      'job_resume',
      {
        description:
          'Restart a failed or cancelled job, or one with failed each() items (same id). Completed calls replay while the (corrected) code repeats them; each() skips done items.',
        inputSchema: JobResumeInput,
      },
      async ({ job_id, code, input, wait_seconds, dry_run }, extra) =>
        answer(async (scope) => {
          // A preview answers at once, like any answer: within the budget, with the caller's tokens.
          if (dry_run)
            return deps.budget.fit(
              await toModel.json(await deps.jobs.preview(job_id, code, input)),
              'the preview is too large for one answer: run `durable-codemode jobs resume JOB_ID --dry-run --json`',
            );
          const since = Date.now();
          const progress = progressFor(extra);
          await deps.jobs.restart(job_id, code, input);
          await progress?.started(job_id);
          const wait = wait_seconds ?? deps.defaultWaitSeconds;
          const view = await deps.jobs.status(job_id, wait, watcher(progress), since);
          return budgeted(view, scope);
        }),
    ),
    createTask: async ({ job_id, code, input, dry_run }: z.infer<typeof JobResumeInput>) => {
      if (dry_run)
        throw new Error(
          'A preview (dry_run) starts no job, so it cannot run as a task: call job_resume without "task".',
        );
      await deps.jobs.restart(job_id, code, input);
      return answerTask(deps.jobs, job_id, (view) => tokenized(view));
    },
  };

  dispatchToolCalls(server, tools, (text) => toModel.text(text));
  return server;
}

/** Hands each view of a waited-for job to the progress reporter, when the request asked for progress. */
function watcher(progress: ProgressReporter | undefined): JobWatcher | undefined {
  return progress && ((view) => progress.observe(view));
}

/** A task-augmented call's answer: the job it started, as a task (its status message tokenized like any answer). */
async function answerTask(
  jobs: JobService,
  jobId: string,
  tokenized: (view: JobView) => Promise<JobView>,
): Promise<CreateTaskResult> {
  const { view, startedAt } = await jobs.snapshot(jobId);
  return { task: taskOf(await tokenized(view), startedAt) };
}

type ToolExtra = RequestHandlerExtra<ServerRequest, ServerNotification>;

/** A registered tool, and for the tools that accept MCP tasks, how a task-augmented call starts one. */
interface DispatchedTool {
  registered: RegisteredTool;
  // eslint-disable-next-line @typescript-eslint/no-explicit-any -- the tool's validated arguments
  createTask?: (args: any) => Promise<CreateTaskResult>;
}

/**
 * Our own `tools/call`: the SDK's would, for a tool that accepts tasks, turn every plain call into
 * a task it polls until the end, with no limit on the wait. Here a plain call runs the tool's own
 * handler (a bounded wait that answers the job id), and a call with `task` starts the job and
 * answers it as a task at once (tools/list says `taskSupport: "optional"` for those tools). An
 * unknown tool or arguments that do not fit get the structured InvalidArgumentsError answer, like
 * every error.
 */
function dispatchToolCalls(
  server: McpServer,
  tools: Record<string, DispatchedTool>,
  toModelText: (text: string) => Promise<string>,
): void {
  for (const tool of Object.values(tools)) if (tool.createTask) tool.registered.execution = { taskSupport: 'optional' };
  server.server.setRequestHandler(CallToolRequestSchema, async (request, extra) => {
    const { name, arguments: args, task } = request.params;
    const tool = Object.hasOwn(tools, name) ? tools[name] : undefined;
    if (!tool) return errorAnswer('InvalidArgumentsError', `Tool ${name} not found`);
    const parsed = await (tool.registered.inputSchema as z.ZodType).safeParseAsync(args ?? {});
    if (!parsed.success) {
      return errorAnswer(
        'InvalidArgumentsError',
        `Invalid arguments for tool ${name}: ${getParseErrorMessage(parsed.error)}`,
      );
    }
    if (task) {
      if (!tool.createTask)
        throw new McpError(ErrorCode.InvalidParams, `Tool ${name} does not run as a task; call it without "task".`);
      try {
        return await tool.createTask(parsed.data);
      } catch (e) {
        // A task that could not start is a failed call (the protocol has no task to report it by);
        // its message passes the model boundary like every answer.
        throw new McpError(ErrorCode.InvalidParams, await toModelText((e as Error).message));
      }
    }
    const handler = tool.registered.handler as (args: unknown, extra: unknown) => Promise<CallToolResult>;
    return handler(parsed.data, extra);
  });
}

/** What leaves towards the model: with privacy on, personal data becomes the caller's tokens. */
interface ModelBoundary {
  /** Data a script produced (a job's result): detectors and field rules. */
  data<T>(value: T): Promise<T>;
  /** Anything else (an answer's envelope, logs, errors, search results over the specs): detectors only. */
  json<T>(value: T): Promise<T>;
  text(text: string): Promise<string>;
  /** The boundary for answers about one job: its public values (privacy.providers.public) are shown as they are. */
  forJob(jobId: string): Promise<ModelBoundary>;
}

/** One answer's boundary: an answer about a job takes the job's (see ModelBoundary.forJob) for all of it. */
interface AnswerScope {
  toModel: ModelBoundary;
}

function modelBoundary({ privacy, jobs }: McpDeps): ModelBoundary {
  if (!privacy?.enabled) {
    const same = <T>(value: T) => Promise.resolve(value);
    const boundary: ModelBoundary = { data: same, json: same, text: same, forJob: async () => boundary };
    return boundary;
  }
  const principal = jobs.principal.name;
  const within = (asIs?: Set<string>): ModelBoundary => ({
    data: (value) => privacy.tokenize(principal, value, { asIs }),
    json: (value) => privacy.tokenize(principal, value, { fieldRules: false, asIs }),
    text: (text) => privacy.tokenizeText(principal, text, asIs),
    forJob: async (jobId) => within(await privacy.publicValuesOf(jobId)),
  });
  return within();
}

/** An error answer: the message as text, and `{ error: { name, message, todo } }` as structured content. */
function errorAnswer(
  name: ErrorName,
  message: string,
  position: { line?: number; column?: number } = {},
): CallToolResult {
  const error = { name, message, todo: ERRORS[name].todo, ...position };
  return { content: [{ type: 'text', text: message }], structuredContent: { error }, isError: true };
}

/**
 * Structured content plus the same JSON as text (compact: the token budget counts it so). A failure
 * is an error answer named from the catalogue (core/errors.ts), with what to do; anything the
 * catalogue does not name (Temporal unreachable, say) is a ServiceError.
 *
 * Everything passes the model boundary last, errors included; if that fails (the privacy vault
 * cannot be reached), the answer is that failure, never the untokenized value.
 */
async function answerWith(scope: AnswerScope, run: (scope: AnswerScope) => Promise<object>): Promise<CallToolResult> {
  try {
    let value: Record<string, unknown>;
    try {
      value = (await run(scope)) as Record<string, unknown>;
    } catch (e) {
      const { name, message, line, column } = e as Error & { line?: number; column?: number };
      return errorAnswer(
        isErrorName(name) ? name : 'ServiceError',
        await scope.toModel.text(message),
        line !== undefined ? { line, column } : {},
      );
    }
    value = await scope.toModel.json(value);
    return {
      content: [{ type: 'text', text: jsonText(value) }],
      structuredContent: value,
      isError: value.status === 'failed',
    };
  } catch (e) {
    // Only the model boundary itself fails here (the vault unreadable, the blob store down); its message names no personal data.
    const { name, message } = e as Error;
    return errorAnswer(isErrorName(name) ? name : 'PrivacyVaultError', message);
  }
}
