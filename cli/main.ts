#!/usr/bin/env -S node --no-node-snapshot
/**
 * `durable-codemode`: the one command operators use.
 *   dev      Temporal dev server + UI, a worker, the MCP HTTP server (and demo APIs) in one process
 *   worker   a worker against an existing Temporal server
 *   serve    the MCP server (stdio or Streamable HTTP) against an existing Temporal server
 *   jobs     list / show / cancel jobs
 */
import { mkdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { parseArgs, type ParseArgsConfig } from 'node:util';
import v8 from 'node:v8';
import vm from 'node:vm';
import { StdioServerTransport } from '@modelcontextprotocol/sdk/server/stdio.js';
import type { Client } from '@temporalio/client';
import type { LogLevel } from '@temporalio/worker';
import { createBlobStore } from '../blobs/index.ts';
import { DEMO_PORTS, demoProvidersConfig, startDemoApis } from '../demo-apis/index.ts';
import { JobService } from '../jobs/service.ts';
import { readyProviders } from '../providers/ready.ts';
import { SpecSearch } from '../sandbox/search.ts';
import { loadTokens } from '../server/auth.ts';
import { ResultBudget } from '../server/budget.ts';
import { checkHttpBind, type McpHttpOptions, startMcpHttpServer } from '../server/http.ts';
import { createMcpServer, type McpDeps } from '../server/mcp.ts';
import { Privacy } from '../privacy/privacy.ts';
import { codecFromEnv, codecKeyFromEnv } from '../temporal/codec.ts';
import { connectClient, connectWorker } from '../temporal/connection.ts';
import { type Config, loadConfig, withProviders } from './config.ts';

const CONFIG_HELP = `  --config FILE       JSON config (providers, limits, ...); also DURABLE_CODEMODE_CONFIG.
                      Without one, the bundled demo APIs (crm, sheets) are the providers.`;
const TEMPORAL_HELP = `Environment (Temporal's own conventions): TEMPORAL_ADDRESS (default localhost:7233), TEMPORAL_NAMESPACE
(default "default"), TEMPORAL_API_KEY, TEMPORAL_TLS_CLIENT_CERT_PATH / TEMPORAL_TLS_CLIENT_KEY_PATH,
TEMPORAL_PROFILE with the TOML config file (TEMPORAL_CONFIG_FILE).`;

const COMMANDS: Record<
  string,
  {
    summary: string;
    help: string;
    options: ParseArgsConfig['options'];
    run: (values: Values, args: string[]) => Promise<void>;
  }
> = {
  dev: {
    summary: 'run everything on this machine: Temporal dev server + UI, worker, MCP HTTP server',
    help: `Usage: durable-codemode dev [--config FILE] [--port N] [--temporal-port N] [--ui-port N]

Starts a Temporal dev server that keeps its state in <dataDir>/temporal.sqlite (so unfinished
jobs continue after a restart), its web UI, a worker, and the MCP Streamable HTTP server.
With no providers configured it also starts the demo APIs (crm on :${DEMO_PORTS.crm}, sheets on :${DEMO_PORTS.sheets}).

${CONFIG_HELP}
  --port N            MCP HTTP port (default 3000)
  --temporal-port N   Temporal frontend port (default 7233)
  --ui-port N         Temporal UI port (default 8233)`,
    options: {
      config: { type: 'string' },
      port: { type: 'string' },
      'temporal-port': { type: 'string' },
      'ui-port': { type: 'string' },
    },
    run: runDev,
  },
  worker: {
    summary: 'run a worker against an existing Temporal server',
    help: `Usage: durable-codemode worker [--config FILE]

Runs workflows, sandbox sessions and API calls. Start as many as you like on one task queue;
kill one and its jobs continue on the others (or on the next one started).

${CONFIG_HELP}
${TEMPORAL_HELP}`,
    options: { config: { type: 'string' } },
    run: runWorker,
  },
  serve: {
    summary: 'run the MCP server (--stdio or --http) against an existing Temporal server',
    help: `Usage: durable-codemode serve --stdio | --http [--port N] [--host H]

  --stdio             speak MCP on stdin/stdout (for clients that spawn the server)
  --http              serve MCP Streamable HTTP at http://HOST:PORT/mcp
  --port N            HTTP port (default 3000)
  --host H            HTTP host (default 127.0.0.1); a non-loopback host needs tokens
${CONFIG_HELP}

Over HTTP, DURABLE_CODEMODE_HTTP_TOKENS="alice:TOKEN,bob:TOKEN" (or http.tokens in the config)
requires a bearer token, and each principal sees only its own jobs. Without tokens the server
listens on loopback only, and local callers act as the operator (as stdio and the CLI do): they
see every job.
${TEMPORAL_HELP}`,
    options: {
      config: { type: 'string' },
      stdio: { type: 'boolean' },
      http: { type: 'boolean' },
      port: { type: 'string' },
      host: { type: 'string' },
    },
    run: runServe,
  },
  jobs: {
    summary: 'list, show, cancel or resume jobs',
    help: `Usage: durable-codemode jobs list [--limit N]
       durable-codemode jobs show JOB_ID [--wait SECONDS]
       durable-codemode jobs cancel JOB_ID
       durable-codemode jobs resume JOB_ID [--code FILE] [--wait SECONDS]

resume restarts a failed or cancelled job under the same id: its journal is replayed as far as
the script (or the corrected one in FILE) agrees with it, so completed calls are not repeated.

Prints JSON. ${TEMPORAL_HELP}
${CONFIG_HELP}`,
    options: {
      config: { type: 'string' },
      limit: { type: 'string' },
      wait: { type: 'string' },
      code: { type: 'string' },
    },
    run: runJobs,
  },
};

type Values = Record<string, string | boolean | undefined>;

function usage(): string {
  const lines = Object.entries(COMMANDS).map(([name, c]) => `  ${name.padEnd(8)} ${c.summary}`);
  return `durable-codemode: Code Mode over MCP with every script a durable Temporal workflow.

Usage: durable-codemode <command> [options]

Commands:
${lines.join('\n')}

Run \`durable-codemode <command> --help\` for a command's options.`;
}

function intOption(values: Values, name: string, fallback: number): number {
  const raw = values[name];
  if (raw === undefined) return fallback;
  const n = Number(raw);
  if (!Number.isInteger(n) || n < 0 || n > 65535)
    throw new UsageError(`--${name} must be a whole number; got ${String(raw)}`);
  return n;
}

class UsageError extends Error {}

/** The config, with the demo APIs as providers when none are configured. */
function loadRuntimeConfig(values: Values): { config: Config; usesDemo: boolean } {
  const config = loadConfig((values.config as string | undefined) ?? process.env.DURABLE_CODEMODE_CONFIG);
  if (Object.keys(config.providers).length > 0) return { config, usesDemo: false };
  const demoUrl = (port: number) => ({ url: `http://127.0.0.1:${port}` });
  return {
    config: withProviders(
      config,
      demoProvidersConfig({ crm: demoUrl(DEMO_PORTS.crm), sheets: demoUrl(DEMO_PORTS.sheets) }),
    ),
    usesDemo: true,
  };
}

async function mcpDeps(config: Config, client: Client): Promise<McpDeps> {
  const blobs = createBlobStore(config.blobs, config.dataDir);
  const { specs, upstream } = await readyProviders(config.providers, { cache: blobs });
  // The MCP server only needs the upstream tool lists (for search); calls happen in workers.
  await upstream.close();
  const privacy = new Privacy(config.privacy, { store: blobs, codecKey: codecKeyFromEnv() });
  return {
    jobs: new JobService(client, config, undefined, privacy),
    budget: new ResultBudget(config.results.maxTokens, blobs),
    privacy,
    search: await SpecSearch.create(specs),
    providers: Object.keys(config.providers),
    defaultWaitSeconds: config.defaultWaitSeconds,
  };
}

/**
 * The HTTP server's options, checked before anything starts: tokens and the codec key must load, and
 * without tokens the host must be loopback. `origins` are trusted besides http.allowedOrigins.
 */
function httpOptionsOf(config: Config, host: string, port: number, origins: string[] = []): McpHttpOptions {
  const tokens = loadTokens(config.http);
  checkHttpBind(host, tokens);
  return { host, port, tokens, allowedOrigins: [...config.http.allowedOrigins, ...origins], codec: codecFromEnv() };
}

/** Starts the MCP HTTP server, warning when it runs without authentication. */
async function serveHttp(deps: McpDeps, options: McpHttpOptions) {
  const http = await startMcpHttpServer(deps, options);
  if (!http.authenticated) {
    console.error(
      `WARNING: the MCP HTTP server has no authentication: it listens on loopback only (${options.host}), and every local caller acts as the operator, who sees all jobs. ` +
        'Set DURABLE_CODEMODE_HTTP_TOKENS="name:TOKEN,..." (or http.tokens in the config) to require bearer tokens.',
    );
  }
  return http;
}

/** Runs `stop` once on SIGINT/SIGTERM; a second signal exits at once. */
function onShutdown(stop: () => Promise<void>): void {
  let stopping = false;
  const handler = (signal: string) => {
    if (stopping) process.exit(130);
    stopping = true;
    console.error(`\n${signal} received: shutting down (press Ctrl-C again to force)...`);
    stop().then(
      () => process.exit(0),
      (e) => {
        console.error(e);
        process.exit(1);
      },
    );
  };
  process.once('SIGINT', () => handler('SIGINT'));
  process.once('SIGTERM', () => handler('SIGTERM'));
}

async function runDev(values: Values): Promise<void> {
  const { config, usesDemo } = loadRuntimeConfig(values);
  const { startWorker, startDevServer } = await workerSdk();
  const temporalPort = intOption(values, 'temporal-port', 7233);
  const uiPort = intOption(values, 'ui-port', 8233);
  // The Temporal UI calls the codec endpoint from its own origin.
  const httpOptions = httpOptionsOf(config, config.http.host, intOption(values, 'port', config.http.port), [
    `http://localhost:${uiPort}`,
    `http://127.0.0.1:${uiPort}`,
  ]);
  // Served to the operator only, i.e. by a server without tokens (server/http.ts).
  const codecEndpoint =
    httpOptions.codec && !httpOptions.tokens?.principals.length && httpOptions.port
      ? `http://127.0.0.1:${httpOptions.port}/codec`
      : undefined;
  mkdirSync(config.dataDir, { recursive: true });
  const dbFilename = join(config.dataDir, 'temporal.sqlite');
  const demo = usesDemo ? await startDemoApis() : undefined;
  const env = await startDevServer({ dbFilename, port: temporalPort, uiPort, codecEndpoint }).catch(async (e) => {
    await demo?.close();
    throw e;
  });
  config.temporal.address = env.address;
  const worker = await startWorker(config, await connectWorker(config.temporal));
  const http = await serveHttp(await mcpDeps(config, await connectClient(config.temporal)), httpOptions);

  console.log(`durable-codemode dev is running

  MCP endpoint (HTTP)  ${http.url}${codecEndpoint ? `\n  Codec endpoint       ${codecEndpoint}  (payloads are encrypted; the UI decodes through it)` : ''}
  Temporal UI          http://localhost:${uiPort}/namespaces/${config.temporal.namespace}/workflows
  Temporal server      ${config.temporal.address}  (state kept in ${dbFilename})
  Providers            ${Object.entries(config.providers)
    .map(([name, p]) => `${name} ${'baseUrl' in p ? p.baseUrl : 'MCP'}`)
    .join(', ')}${usesDemo ? '  (bundled demo APIs)' : ''}

Connect an MCP client to the endpoint above, or run \`durable-codemode serve --stdio\` for stdio.
Press Ctrl-C to stop; unfinished jobs continue on the next start.`);

  onShutdown(async () => {
    await http.close();
    await worker.shutdown();
    await demo?.close();
    await env.teardown();
  });
  await worker.done;
}

async function runWorker(values: Values): Promise<void> {
  const { config } = loadRuntimeConfig(values);
  const { startWorker } = await workerSdk();
  const connection = await connectWorker(config.temporal);
  const worker = await startWorker(config, connection);
  console.error(
    `worker polling task queue "${config.temporal.taskQueue}" (sessions on "${worker.sessionTaskQueue}") at ${config.temporal.address}, namespace ${config.temporal.namespace}; providers: ${Object.keys(config.providers).join(', ')}`,
  );
  onShutdown(() => worker.shutdown());
  await worker.done;
  await connection.close();
}

async function runServe(values: Values): Promise<void> {
  if (Boolean(values.stdio) === Boolean(values.http))
    throw new UsageError('serve needs exactly one of --stdio or --http');
  const { config } = loadRuntimeConfig(values);
  const httpOptions = values.http
    ? httpOptionsOf(
        config,
        (values.host as string | undefined) ?? config.http.host,
        intOption(values, 'port', config.http.port),
      )
    : undefined;
  const client = await connectClient(config.temporal);
  const deps = await mcpDeps(config, client);
  if (!httpOptions) {
    // stdout belongs to the protocol: everything human goes to stderr.
    await createMcpServer(deps).connect(new StdioServerTransport());
    releaseStartupMemory();
    console.error(
      `durable-codemode MCP server on stdio (Temporal ${config.temporal.address}, providers: ${deps.providers.join(', ')})`,
    );
    return;
  }
  const http = await serveHttp(deps, httpOptions);
  releaseStartupMemory();
  console.error(
    `durable-codemode MCP server at ${http.url} (Temporal ${config.temporal.address}, providers: ${deps.providers.join(', ')})`,
  );
  onShutdown(() => http.close());
}

/**
 * Starting `serve` leaves tens of MB of garbage in V8's heap (loading modules, parsing the config and
 * the specs) that V8 may keep committed for as long as the server idles. One last-resort collection
 * once it is ready gives that back, so an idle MCP server holds only what it uses. Node has no call
 * for it: --expose-gc is on just long enough to take gc() from a fresh context (no sandbox context
 * is being created then: `serve` runs no jobs).
 */
function releaseStartupMemory(): void {
  v8.setFlagsFromString('--expose-gc');
  const gc = vm.runInNewContext('gc') as (options: object) => void;
  v8.setFlagsFromString('--no-expose-gc');
  gc({ type: 'major', execution: 'sync', flavor: 'last-resort' });
}

async function runJobs(values: Values, args: string[]): Promise<void> {
  const [action, jobId] = args;
  const { config } = loadRuntimeConfig(values);
  const needsId = action !== 'list';
  if (!action || !['list', 'show', 'cancel', 'resume'].includes(action) || (needsId && !jobId))
    throw new UsageError(COMMANDS.jobs.help);
  const code = typeof values.code === 'string' ? readCodeFile(values.code) : undefined;
  const client = await connectClient(config.temporal);
  const jobs = new JobService(client, config);
  const wait = intOption(values, 'wait', 0);
  const result =
    action === 'list'
      ? await jobs.list(intOption(values, 'limit', 20))
      : action === 'show'
        ? await jobs.status(jobId, wait)
        : action === 'cancel'
          ? await jobs.cancel(jobId)
          : await jobs.resume(jobId, code, wait);
  console.log(JSON.stringify(result, null, 2));
  await client.connection.close();
}

function readCodeFile(file: string): string {
  try {
    return readFileSync(file, 'utf8');
  } catch (e) {
    throw new UsageError(`Cannot read --code ${file}: ${(e as Error).message}`);
  }
}

/**
 * The worker SDK, loaded only by the commands that run a worker (`dev`, `worker`): it brings the
 * SDK's native core, which `serve` and `jobs` do not need (an idle MCP server stays lean).
 */
async function workerSdk() {
  const [{ DefaultLogger, Runtime }, { startWorker }, { startDevServer }] = await Promise.all([
    import('@temporalio/worker'),
    import('../temporal/worker.ts'),
    import('../temporal/dev-server.ts'),
  ]);
  // The SDK's INFO lines (every worker state change) would drown the URLs `dev` prints. Its warning
  // that a worker has no workflows is expected for the session worker (activities only), so dropped.
  const logLevel = (process.env.DURABLE_CODEMODE_LOG_LEVEL?.toUpperCase() as LogLevel | undefined) ?? 'WARN';
  const sdkLogger = new DefaultLogger(logLevel);
  Runtime.install({
    logger: new DefaultLogger(logLevel, (entry) => {
      if (!entry.message.startsWith('No workflows registered')) sdkLogger.log(entry.level, entry.message, entry.meta);
    }),
  });
  return { startWorker, startDevServer };
}

async function main(argv: string[]): Promise<void> {
  const [name, ...rest] = argv;
  if (!name || name === '--help' || name === '-h' || name === 'help') {
    console.log(usage());
    return;
  }
  const command = COMMANDS[name];
  if (!command) throw new UsageError(`Unknown command "${name}".\n\n${usage()}`);
  let parsed;
  try {
    parsed = parseArgs({
      args: rest,
      options: { ...command.options, help: { type: 'boolean', short: 'h' } },
      allowPositionals: true,
    });
  } catch (e) {
    throw new UsageError(`${(e as Error).message}\n\n${command.help}`);
  }
  const { values, positionals } = parsed;
  if (values.help) {
    console.log(command.help);
    return;
  }
  await command.run(values, positionals);
}

main(process.argv.slice(2)).catch((e: Error) => {
  console.error(e instanceof UsageError ? e.message : `durable-codemode: ${e.message}`);
  process.exit(e instanceof UsageError ? 2 : 1);
});
