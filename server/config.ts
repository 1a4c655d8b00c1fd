/**
 * The config file (JSON, named by --config or DURABLE_CODEMODE_CONFIG) and the environment it
 * combines with. One zod schema is the definition; errors name the offending key path.
 */
import { readFileSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { loadClientConfigProfile } from '@temporalio/envconfig';
import { z } from 'zod';
import { RetrySettings, SandboxLimits } from '../core/journal.ts';
import { PRINCIPAL_NAME } from './auth.ts';

/** Globals the sandbox defines itself; a provider cannot take these names. */
const RESERVED_NAMES = new Set(['input', 'step', 'sleep', 'progress', 'console', 'ApiError', 'spec', 'globalThis', 'Date', 'Math', 'JSON', 'Promise', 'Object', 'Array', 'Error']);

const ProviderName = z
  .string()
  .regex(/^[A-Za-z_$][A-Za-z0-9_$]*$/, 'a provider name must be a JavaScript identifier (it becomes a global in the sandbox)')
  .refine((name) => !RESERVED_NAMES.has(name), { message: 'this name is reserved by the sandbox' });

const EnvVarName = z.string().regex(/^[A-Za-z_][A-Za-z0-9_]*$/, 'must be the name of an environment variable');

/** Credentials always come from the environment, so config files can be committed. */
export const ProviderAuth = z.discriminatedUnion('type', [
  z.object({ type: z.literal('bearer'), tokenEnv: EnvVarName }),
  z.object({ type: z.literal('header'), header: z.string(), valueEnv: EnvVarName }),
  z.object({ type: z.literal('query'), param: z.string(), valueEnv: EnvVarName }),
]);

/** An HTTP API described by an OpenAPI document: `name.request({ method, path, query, body })` in the sandbox. */
export const HttpProviderConfig = z.object({
  /** OpenAPI document: a file path (relative to the config file) or an http(s) URL. */
  openapi: z.string().min(1),
  baseUrl: z.url({ protocol: /^https?$/ }),
  auth: ProviderAuth.optional(),
  /** Header carrying the per-effect idempotency key on writes. */
  idempotencyHeader: z.string().default('Idempotency-Key'),
  timeoutMs: z.number().int().positive().default(30_000),
  /** Retries of transient failures (connection errors, 408, 429, 5xx); Retry-After is honoured. */
  retry: RetrySettings.prefault({}),
  /** Refuse requests that match no operation of the spec, naming the closest ones; turn off for an API whose spec lags behind it. */
  validateRequests: z.boolean().default(true),
});

/** An upstream MCP server: its tools become `name.tool_name(args)` in the sandbox. */
export const McpProviderConfig = z.object({
  mcp: z.union([
    z.object({
      /** Command line of a stdio server, e.g. ["node", "server.js"]; each worker process starts its own. */
      command: z.array(z.string()).min(1),
      /** Environment for the server, as names of the worker's variables to pass through (secrets stay out of the file). */
      env: z.array(EnvVarName).default([]),
    }),
    z.object({ url: z.url({ protocol: /^https?$/ }), auth: ProviderAuth.optional() }),
  ]),
  timeoutMs: z.number().int().positive().default(60_000),
  retry: RetrySettings.prefault({}),
});

export const ProviderConfig = z.union([HttpProviderConfig, McpProviderConfig]);

/**
 * Where blobs live: files under <dataDir>/blobs (one machine), or an S3-compatible bucket that every
 * worker shares, so any worker can replay any job. S3 credentials, and the endpoint and region when
 * not set here, come from the AWS SDK's own environment (AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY,
 * AWS_ENDPOINT_URL_S3, AWS_REGION) or its other credential sources (profiles, instance roles).
 */
export const BlobStoreConfig = z.discriminatedUnion('type', [
  z.object({ type: z.literal('local') }),
  z.object({
    type: z.literal('s3'),
    bucket: z.string().min(1),
    /** Prepended to every key (e.g. "durable-codemode/"); keys are `${prefix}sha256-<hex>`. */
    prefix: z.string().default(''),
    /** An S3-compatible server such as MinIO; omit for AWS S3. */
    endpoint: z.url({ protocol: /^https?$/ }).optional(),
    region: z.string().min(1).optional(),
    /** Bucket in the URL path rather than the host name; defaults to true with a custom endpoint (MinIO needs it). */
    forcePathStyle: z.boolean().optional(),
  }),
]);

export const Config = z.object({
  providers: z.record(ProviderName, ProviderConfig).default({}),
  temporal: z
    .object({
      address: z.string().default('localhost:7233'),
      namespace: z.string().default('default'),
      taskQueue: z.string().default('durable-codemode'),
    })
    .prefault({}),
  limits: SandboxLimits.prefault({}),
  /** Where `dev` keeps the Temporal SQLite file, and the local blob store lives (<dataDir>/blobs). */
  dataDir: z.string().default('.durable-codemode'),
  blobs: z
    .object({
      /** Values larger than this (JSON bytes) are kept in the blob store, not in workflow history. */
      thresholdBytes: z.number().int().min(256).max(1024 * 1024).default(4096),
      store: BlobStoreConfig.default({ type: 'local' }),
    })
    .prefault({}),
  /** A job's workflow run continues as new after this many history events (Temporal's hard limit is 51,200). */
  maxEventsPerRun: z.number().int().min(200).max(40_000).default(10_000),
  http: z
    .object({
      host: z.string().default('127.0.0.1'),
      port: z.number().int().min(0).max(65535).default(3000),
      /** Bearer tokens by principal, each read from the named environment variable (see server/auth.ts). */
      tokens: z.record(z.string().regex(PRINCIPAL_NAME, 'a principal is 1-64 letters, digits, _ . @ -'), z.object({ tokenEnv: EnvVarName })).default({}),
      /** Browser origins allowed to call the server (any request with another Origin header is refused). */
      allowedOrigins: z.array(z.url()).default([]),
    })
    .prefault({}),
  /** What one worker process takes on at once. */
  worker: z
    .object({
      /** Live sandboxes (one per running job) a worker holds at once; more jobs wait, idle ones are set aside and replayed later. */
      maxConcurrentSessions: z.number().int().positive().default(100),
    })
    .prefault({}),
  /** How long `execute` waits for a result before answering with a job id. */
  defaultWaitSeconds: z.number().min(0).max(300).default(20),
  /** Tool answers stay within this many tokens (o200k_base); larger results are cut, or stored and paged (job_status). */
  results: z.object({ maxTokens: z.number().int().min(500).max(200_000).default(4000) }).prefault({}),
});

export type ProviderAuth = z.infer<typeof ProviderAuth>;
export type ProviderConfig = z.infer<typeof ProviderConfig>;
export type BlobStoreConfig = z.infer<typeof BlobStoreConfig>;
export type HttpProviderConfig = z.infer<typeof HttpProviderConfig>;
export type McpProviderConfig = z.infer<typeof McpProviderConfig>;

export function isMcpProvider(provider: ProviderConfig): provider is McpProviderConfig {
  return 'mcp' in provider;
}
export type Config = z.infer<typeof Config>;

export class ConfigError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'ConfigError';
  }
}

/**
 * Reads and validates a config file; relative spec paths resolve against the file's folder.
 * Environment variables override the Temporal connection, as operators expect.
 */
export function loadConfig(file: string | undefined, env: NodeJS.ProcessEnv = process.env): Config {
  let raw: unknown = {};
  if (file) {
    let text: string;
    try {
      text = readFileSync(file, 'utf8');
    } catch (e) {
      throw new ConfigError(`Cannot read config file ${file}: ${(e as Error).message}`);
    }
    try {
      raw = JSON.parse(text);
    } catch (e) {
      throw new ConfigError(`Config file ${file} is not valid JSON: ${(e as Error).message}`);
    }
  }
  return parseConfig(raw, file, env);
}

/** zod reports a bad record key as "Invalid key in record"; the reason is one level down. */
function issueMessage(issue: z.core.$ZodIssue): string {
  if (issue.code === 'invalid_key' && issue.issues.length > 0) return issue.issues.map((i) => i.message).join('; ');
  return issue.message;
}

export function parseConfig(raw: unknown, file: string | undefined, env: NodeJS.ProcessEnv = process.env): Config {
  const parsed = Config.safeParse(raw);
  if (!parsed.success) {
    const problems = parsed.error.issues.map((i) => `  - ${i.path.join('.') || '(top level)'}: ${issueMessage(i)}`).join('\n');
    throw new ConfigError(`Invalid config${file ? ` in ${file}` : ''}:\n${problems}`);
  }
  const config = parsed.data;
  const base = file ? dirname(resolve(file)) : process.cwd();
  for (const provider of Object.values(config.providers)) {
    if (!isMcpProvider(provider) && !/^https?:\/\//.test(provider.openapi)) provider.openapi = resolve(base, provider.openapi);
  }
  const profile = temporalProfile(env);
  config.temporal.address = profile.address || config.temporal.address;
  config.temporal.namespace = profile.namespace || config.temporal.namespace;
  config.temporal.taskQueue = env.DURABLE_CODEMODE_TASK_QUEUE || config.temporal.taskQueue;
  // A bucket in the environment switches the blob store to S3 (the file's other S3 settings still apply).
  if (env.DURABLE_CODEMODE_S3_BUCKET) {
    const s3 = config.blobs.store.type === 's3' ? config.blobs.store : { prefix: '' };
    config.blobs.store = { ...s3, type: 's3', bucket: env.DURABLE_CODEMODE_S3_BUCKET };
  }
  if (env.DURABLE_CODEMODE_S3_PREFIX !== undefined && config.blobs.store.type === 's3') config.blobs.store.prefix = env.DURABLE_CODEMODE_S3_PREFIX;
  config.dataDir = resolve(base, env.DURABLE_CODEMODE_DATA_DIR || config.dataDir);
  return config;
}

/**
 * The Temporal address and namespace as the SDK's environment configuration gives them
 * (TEMPORAL_ADDRESS / TEMPORAL_NAMESPACE, else the TOML profile picked by TEMPORAL_PROFILE from
 * TEMPORAL_CONFIG_FILE or ~/.config/temporalio/temporal.toml); server/temporal.ts adds its TLS and API key.
 */
function temporalProfile(env: NodeJS.ProcessEnv): { address?: string; namespace?: string } {
  try {
    return loadClientConfigProfile({ overrideEnvVars: env as Record<string, string> });
  } catch (e) {
    throw new ConfigError(`Invalid Temporal connection settings: ${(e as Error).message} (check TEMPORAL_PROFILE and TEMPORAL_CONFIG_FILE)`);
  }
}

/** The config with `providers` replaced by these (validated like the file's own). */
export function withProviders(config: Config, providers: Record<string, unknown>): Config {
  return { ...config, providers: Config.shape.providers.parse(providers) };
}
