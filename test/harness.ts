/**
 * Shared pieces of the integration tests: a config pointing at the suite's Temporal dev server
 * with a task queue of the test's own, workers in this process or as real child processes (to be
 * killed with SIGKILL), and MCP clients over both transports.
 */
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { Client as McpClient } from '@modelcontextprotocol/sdk/client/index.js';
import { StdioClientTransport } from '@modelcontextprotocol/sdk/client/stdio.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import { Client, Connection } from '@temporalio/client';
import { inject } from 'vitest';
import { DefaultLogger, NativeConnection, Runtime } from '@temporalio/worker';
import { codecKeyFromEnv, dataConverter } from '../temporal/codec.ts';
import { Privacy } from '../privacy/privacy.ts';
import { type Config, parseConfig } from '../cli/config.ts';
import { createBlobStore } from '../blobs/index.ts';
import { JobService, type JobView } from '../jobs/service.ts';
import { ResultBudget } from '../server/budget.ts';
import { startWorker, type RunningWorker } from '../temporal/worker.ts';
import { CRM_SPEC_PATH, startCrmApi, type CrmApi } from '../demo-apis/crm.ts';

// Worker state changes at INFO would bury the test output.
Runtime.install({ logger: new DefaultLogger('WARN') });

export const CLI = fileURLToPath(new URL('../cli/main.ts', import.meta.url));

/** Where the suite's Temporal server is (test/integration/global-setup.ts), as the product reads it. */
export function temporalEnv(): Record<string, string> {
  return { TEMPORAL_ADDRESS: inject('temporalAddress'), TEMPORAL_NAMESPACE: inject('temporalNamespace') };
}

/** A config for one test: its own task queue on the suite's Temporal server, its own data directory. */
export function testConfig(raw: Record<string, unknown>): Config {
  const dataDir = mkdtempSync(join(tmpdir(), 'dcm-data-'));
  const config = parseConfig({ dataDir, ...raw }, undefined, temporalEnv());
  config.temporal.taskQueue = `test-${randomUUID().slice(0, 8)}`;
  return config;
}

/** The answer budget the MCP server would use with this config. */
export function resultBudget(config: Config): ResultBudget {
  return new ResultBudget(config.results.maxTokens, createBlobStore(config.blobs, config.dataDir));
}

/** Writes a minimal OpenAPI document with these operations (e.g. `GET /items/{id}`), for a test's own API. */
export function writeOpenApiSpec(operations: string[]): string {
  const paths: Record<string, Record<string, unknown>> = {};
  for (const op of operations) {
    const [method, path] = op.split(' ') as [string, string];
    (paths[path] ??= {})[method.toLowerCase()] = {
      operationId: `${method.toLowerCase()}${path.replace(/\W+/g, '_')}`,
      summary: op,
      responses: { 200: { description: 'ok' } },
    };
  }
  const file = join(mkdtempSync(join(tmpdir(), 'dcm-spec-')), 'openapi.json');
  writeFileSync(file, JSON.stringify({ openapi: '3.0.3', info: { title: 'test API', version: '1' }, paths }));
  return file;
}

/** Writes the config to a file a child process can read (`--config`); it shares the test's blob store. */
export function writeConfigFile(config: Config): string {
  const file = join(mkdtempSync(join(tmpdir(), 'dcm-test-')), 'config.json');
  writeFileSync(file, JSON.stringify(config));
  return file;
}

export async function connectTestClient(config: Config): Promise<Client> {
  const connection = await Connection.connect({ address: config.temporal.address });
  return new Client({ connection, namespace: config.temporal.namespace, dataConverter: dataConverter() });
}

export interface InProcessStack {
  config: Config;
  client: Client;
  jobs: JobService;
  /** The MCP server's privacy runtime (tokenizing answers), on the test's blob store. */
  privacy: Privacy;
  worker: RunningWorker;
  close(): Promise<void>;
}

/** A worker and a job service in this process: the fast path for tests that kill nothing. */
export async function startInProcessStack(config: Config): Promise<InProcessStack> {
  const connection = await NativeConnection.connect({ address: config.temporal.address });
  const worker = await startWorker(config, connection);
  const client = await connectTestClient(config);
  const privacy = new Privacy(config.privacy, {
    store: createBlobStore(config.blobs, config.dataDir),
    codecKey: codecKeyFromEnv(),
  });
  return {
    config,
    client,
    jobs: new JobService(client, config, undefined, { privacy }),
    privacy,
    worker,
    async close() {
      await worker.shutdown();
      await connection.close();
      await client.connection.close();
    },
  };
}

/** An in-process stack whose one provider is a CRM demo API, and the CLI run against the same config. */
export interface CrmStack extends InProcessStack {
  crm: CrmApi;
  configFile: string;
  cli(args: string[]): Promise<{ stdout: string; stderr: string }>;
}

export async function startCrmStack(): Promise<CrmStack> {
  const crm = await startCrmApi();
  const config = testConfig({ providers: { crm: { openapi: CRM_SPEC_PATH, baseUrl: crm.url } } });
  const configFile = writeConfigFile(config);
  const stack = await startInProcessStack(config);
  return {
    ...stack,
    crm,
    configFile,
    cli: (args) =>
      promisify(execFile)(process.execPath, ['--no-node-snapshot', CLI, ...args, '--config', configFile], {
        env: { ...process.env, ...temporalEnv() },
        maxBuffer: 16 * 1024 * 1024,
      }),
    async close() {
      await stack.close();
      await crm.close();
    },
  };
}

export interface ChildWorker {
  process: ChildProcess;
  output(): string;
  /** Sends the signal and waits for the process to exit. */
  kill(signal: NodeJS.Signals): Promise<void>;
  /** Sends the signal (e.g. SIGSTOP, SIGCONT) without waiting. */
  signal(signal: NodeJS.Signals): void;
}

/**
 * Runs `durable-codemode worker` as a real process; resolves once it polls its task queue. It
 * connects to the suite's Temporal server unless `env` says otherwise.
 */
export async function spawnWorker(
  configFile: string,
  env: Record<string, string> = {},
  cli = CLI,
): Promise<ChildWorker> {
  const child = spawn(process.execPath, ['--no-node-snapshot', cli, 'worker', '--config', configFile], {
    env: { ...process.env, ...temporalEnv(), ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let output = '';
  child.stdout.on('data', (d) => (output += d));
  child.stderr.on('data', (d) => (output += d));
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`worker did not start within 60 s:\n${output}`)), 60_000);
    const check = () => {
      if (output.includes('worker polling')) {
        clearTimeout(timer);
        resolve();
      }
    };
    child.stderr.on('data', check);
    child.once('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`worker exited with ${code} before polling:\n${output}`));
    });
  });
  return {
    process: child,
    output: () => output,
    async kill(signal) {
      if (child.exitCode === null && child.signalCode === null) child.kill(signal);
      await exited;
    },
    signal(signal) {
      child.kill(signal);
    },
  };
}

/**
 * An MCP client over HTTP; with `token`, every request carries it as a bearer token. `received`
 * gets the body of every HTTP response, for tests that scan all the traffic a client receives.
 */
export async function mcpOverHttp(url: string, token?: string, received?: (body: string) => void): Promise<McpClient> {
  const client = new McpClient({ name: 'durable-codemode-tests', version: '0' });
  const recording: typeof fetch = async (input, init) => {
    const response = await fetch(input, init);
    received?.(await response.clone().text());
    return response;
  };
  await client.connect(
    new StreamableHTTPClientTransport(new URL(url), {
      ...(token ? { requestInit: { headers: { authorization: `Bearer ${token}` } } } : {}),
      ...(received ? { fetch: recording } : {}),
    }),
  );
  return client;
}

/** `durable-codemode serve --stdio` (of `cli`: the sources' entry by default) as an MCP client sees it. */
export async function mcpOverStdio(
  configFile: string,
  cli = CLI,
  env: Record<string, string> = {},
): Promise<McpClient> {
  const client = new McpClient({ name: 'durable-codemode-tests', version: '0' });
  await client.connect(
    new StdioClientTransport({
      command: process.execPath,
      args: ['--no-node-snapshot', cli, 'serve', '--stdio', '--config', configFile],
      env: { ...(process.env as Record<string, string>), ...temporalEnv(), ...env },
      stderr: 'pipe',
    }),
  );
  return client;
}

/** Every string and every payload's bytes (as text) in a value from Temporal: what a reader without the codec key sees. */
export function texts(value: unknown, out: string[] = []): string[] {
  if (value instanceof Uint8Array) out.push(Buffer.from(value).toString('utf8'));
  else if (typeof value === 'string') out.push(value);
  else if (Array.isArray(value)) for (const v of value) texts(v, out);
  else if (value && typeof value === 'object') for (const v of Object.values(value)) texts(v, out);
  return out;
}

/** Polls `check` until it returns a value other than undefined, or fails after `ms`. */
export async function eventually<T>(
  check: () => Promise<T | undefined> | T | undefined,
  ms = 60_000,
  what = 'condition',
): Promise<T> {
  const deadline = Date.now() + ms;
  for (;;) {
    const value = await check();
    if (value !== undefined) return value;
    if (Date.now() > deadline) throw new Error(`timed out after ${ms} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

/** The job's view once it has ended (any status but running), read with bounded status waits. */
export async function finished(jobs: JobService, jobId: string, ms = 180_000): Promise<JobView> {
  return eventually(
    async () => {
      const view = await jobs.status(jobId, 20);
      return view.status === 'running' ? undefined : view;
    },
    ms,
    `job ${jobId} to end`,
  );
}

/**
 * The pid of the worker process that ran the job's latest fused round: its activity's started
 * event names the worker (`pid@host`, the SDK's default identity), whichever queue the round took.
 */
export async function roundHolderPid(client: Client, jobId: string): Promise<number | undefined> {
  const events = (await client.workflow.getHandle(jobId).fetchHistory()).events ?? [];
  const rounds = new Set(
    events
      .filter((e) => /^runRound(Here)?$/.test(e.activityTaskScheduledEventAttributes?.activityType?.name ?? ''))
      .map((e) => String(e.eventId)),
  );
  const started = events.filter((e) => rounds.has(String(e.activityTaskStartedEventAttributes?.scheduledEventId)));
  const pid = /^(\d+)@/.exec(started.at(-1)?.activityTaskStartedEventAttributes?.identity ?? '')?.[1];
  return pid ? Number(pid) : undefined;
}
