/**
 * The MCP tool surface: `search` and `execute`, plus the job tools. All definitions together stay
 * near 1,000 tokens however many providers and operations are configured: the specs are reached
 * through code, never listed.
 */
import { McpServer } from '@modelcontextprotocol/sdk/server/mcp.js';
import type { CallToolResult } from '@modelcontextprotocol/sdk/types.js';
import { z } from 'zod';
import { isErrorName } from '../core/errors.ts';
import type { Privacy } from '../privacy/privacy.ts';
import type { SpecSearch } from '../sandbox/search.ts';
import type { JobService, JobView } from '../jobs/service.ts';
import { jsonText, type ResultBudget } from './budget.ts';

export interface McpDeps {
  jobs: JobService;
  /** How large an answer may be, and where results over that are stored to be paged. */
  budget: ResultBudget;
  search: SpecSearch;
  providers: string[];
  defaultWaitSeconds: number;
  /** With privacy enabled, every answer carries the caller's tokens instead of personal data. */
  privacy?: Privacy;
}

const VERSION = '0.1.0';

export const SearchInput = {
  code: z.string().describe('async () => { ... } run with the global `spec`; return only what you need'),
};

export const ExecuteInput = {
  code: z.string().describe('async () => { ... } using the API clients; return a small JSON result'),
  // Any JSON value (the protocol carries nothing else): z.json()'s recursive definition would cost
  // about 100 tokens of every tools/list.
  input: z.unknown().optional().describe('JSON value available to the script as `input`'),
  wait_seconds: z.number().min(0).max(60).optional().describe('max seconds to wait inline (default 20)'),
};

export const JobStatusInput = {
  job_id: z.string(),
  wait_seconds: z.number().min(0).max(60).optional().describe('wait up to this long for the job to finish'),
  page: z.number().min(1).optional().describe('page of result_ref'),
};

export const JobCancelInput = { job_id: z.string() };

export const JobResumeInput = {
  job_id: z.string(),
  code: z.string().optional().describe('corrected script; omit to retry the same one'),
  wait_seconds: z.number().min(0).max(60).optional(),
};

function searchDescription(): string {
  return [
    'Search the API specs with JS or TS code instead of reading them: `spec` = { paths: { [path]: { [method]: op } }, operations: [op], tools: [{ provider, name, description, inputSchema }], providers: { [name]: { title, paths, schemas, error? } } }, op = { provider, method, path, operationId, summary, description, tags, parameters, requestBody, responses }.',
    'Schemas read as resolved; results write each once, then { $ref } (in providers[name].schemas). types(op or tool): its request and response as TypeScript.',
    "Example: async () => Object.keys(spec.paths).filter(p => p.includes('/leads'))",
  ].join('\n');
}

function executeDescription(providers: string[], defaultWait: number): string {
  const first = providers[0] ?? 'api';
  return [
    'Run JS or TS against the APIs as a durable job: it survives crashes and restarts, and completed calls are never repeated.',
    `Globals: ${providers.length ? providers.join(', ') : '(no providers configured)'} — an API has .request({ method, path, query, body }) resolving to the parsed response body (non-2xx throws an error with .status and .body); an MCP server has one async function per tool (spec.tools).`,
    '`input`; `await step(name, fn)` saves fn() (pure computation, no calls inside) so it never reruns; `await checkpoint(state)` saves a small state, read back as `resume` by job_resume; `progress(done, total, message)`; `await sleep(ms)`; `CSV.parse(text)` → row objects, `CSV.stringify(rows)`; console.log.',
    'Use `await Promise.all` for parallel calls. Date.now() and Math.random() are recorded.',
    `Returns the result if done within wait_seconds (default ${defaultWait}), else { job_id, status: "running", progress }: poll job_status.`,
    `Example: async () => { const r = await ${first}.request({ method: 'GET', path: '/items', query: { limit: 10 } }); return r.length; }`,
  ].join('\n');
}

export function createMcpServer(deps: McpDeps): McpServer {
  const server = new McpServer({ name: 'durable-codemode', version: VERSION });
  const toModel = modelBoundary(deps);
  const answer = (run: () => Promise<object>) => answerWith(toModel, run);
  // A job's view is tokenized before the budget cuts or pages it, so previews and pages show tokens
  // and no value is split across two pages where neither half would be recognised.
  const tokenizedView = async (pending: Promise<JobView>): Promise<JobView> => {
    const { result, ...rest } = await pending;
    const envelope = await toModel.json(rest);
    return result === undefined ? envelope : { ...envelope, result: await toModel.data(result) };
  };

  server.registerTool('search', { description: searchDescription(), inputSchema: SearchInput }, async ({ code }) =>
    answer(async () => deps.budget.search(await toModel.json(await deps.search.run(code)))),
  );

  server.registerTool(
    'execute',
    { description: executeDescription(deps.providers, deps.defaultWaitSeconds), inputSchema: ExecuteInput },
    async ({ code, input, wait_seconds }) =>
      answer(async () =>
        deps.budget.job(await tokenizedView(deps.jobs.execute({ code, input, waitSeconds: wait_seconds }))),
      ),
  );

  server.registerTool(
    'job_status',
    {
      description: 'Status, progress, recent logs and the result or error of a job started by execute.',
      inputSchema: JobStatusInput,
    },
    async ({ job_id, wait_seconds, page }) =>
      answer(async () => {
        const view = await tokenizedView(deps.jobs.status(job_id, wait_seconds ?? 0));
        return page === undefined ? deps.budget.job(view) : deps.budget.page(view, page);
      }),
  );

  server.registerTool(
    'job_cancel',
    { description: 'Cancel a running job.', inputSchema: JobCancelInput },
    async ({ job_id }) => answer(async () => deps.budget.job(await tokenizedView(deps.jobs.cancel(job_id)))),
  );

  server.registerTool(
    'job_resume',
    {
      description:
        'Restart a failed or cancelled job under the same id. Completed calls are replayed, not repeated, as long as the (corrected) code makes the same calls; the answer reports where it diverged. `resume` holds its last checkpoint(state).',
      inputSchema: JobResumeInput,
    },
    async ({ job_id, code, wait_seconds }) =>
      answer(async () =>
        deps.budget.job(await tokenizedView(deps.jobs.resume(job_id, code, wait_seconds ?? deps.defaultWaitSeconds))),
      ),
  );

  return server;
}

/** What leaves towards the model: with privacy on, personal data becomes the caller's tokens. */
interface ModelBoundary {
  /** Data a script produced (a job's result): detectors and field rules. */
  data<T>(value: T): Promise<T>;
  /** Anything else (an answer's envelope, logs, errors, search results over the specs): detectors only. */
  json<T>(value: T): Promise<T>;
  text(text: string): Promise<string>;
}

function modelBoundary({ privacy, jobs }: McpDeps): ModelBoundary {
  if (!privacy?.enabled) {
    const same = <T>(value: T) => Promise.resolve(value);
    return { data: same, json: same, text: same };
  }
  const principal = jobs.principal.name;
  return {
    data: (value) => privacy.tokenize(principal, value),
    json: (value) => privacy.tokenize(principal, value, { fieldRules: false }),
    text: (text) => privacy.tokenizeText(principal, text),
  };
}

/**
 * Structured content plus the same JSON as text (compact: the token budget counts it so); failures
 * become tool errors the model can read: the message as text, and for an error of the catalogue
 * (core/errors.ts) its name, and position where it has one, as `structuredContent.error`.
 *
 * Everything passes the model boundary last, errors included; if that fails (the privacy vault
 * cannot be reached), the answer is that failure, never the untokenized value.
 */
async function answerWith(toModel: ModelBoundary, run: () => Promise<object>): Promise<CallToolResult> {
  try {
    let value: Record<string, unknown>;
    try {
      value = (await run()) as Record<string, unknown>;
    } catch (e) {
      const { name, message, line, column } = e as Error & { line?: number; column?: number };
      const error = { name, message: await toModel.text(message), ...(line !== undefined ? { line, column } : {}) };
      return {
        content: [{ type: 'text', text: error.message }],
        ...(isErrorName(name) ? { structuredContent: { error } } : {}),
        isError: true,
      };
    }
    value = await toModel.json(value);
    return {
      content: [{ type: 'text', text: jsonText(value) }],
      structuredContent: value,
      isError: value.status === 'failed',
    };
  } catch (e) {
    // Only the model boundary itself fails here; its message names no personal data.
    const error = { name: 'PrivacyVaultError', message: (e as Error).message };
    return { content: [{ type: 'text', text: error.message }], structuredContent: { error }, isError: true };
  }
}
