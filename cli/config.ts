/**
 * The config file (JSON, named by --config or DURABLE_CODEMODE_CONFIG) and the environment it
 * combines with. Each part of the product owns the schema of its section; this file composes them.
 * Errors name the offending key path.
 */
import { readFileSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { z } from 'zod';
import { configObject } from '../core/config-object.ts';
import { SandboxLimits } from '../core/limits.ts';
import { applyBlobEnv, BlobsConfig } from '../blobs/config.ts';
import { ApprovalsConfig, BatchFlushConfig, DefaultWaitSeconds, MaxEventsPerRun } from '../jobs/config.ts';
import { PrivacyConfig, unknownPrivacyProviders } from '../privacy/config.ts';
import { isMcpProvider, ProvidersConfig } from '../providers/config.ts';
import { HttpConfig, ResultsConfig } from '../server/config.ts';
import { explainIssues } from './config-errors.ts';
import { applyTemporalEnv, TemporalConfig, WorkerConfig } from '../temporal/config.ts';

export const Config = configObject({
  providers: ProvidersConfig.default({}),
  temporal: TemporalConfig,
  limits: SandboxLimits.prefault({}),
  /** Where `dev` keeps the Temporal SQLite file, and the local blob store lives (<dataDir>/blobs). */
  dataDir: z.string().default('.durable-codemode'),
  blobs: BlobsConfig,
  maxEventsPerRun: MaxEventsPerRun,
  batchFlush: BatchFlushConfig,
  http: HttpConfig,
  worker: WorkerConfig,
  defaultWaitSeconds: DefaultWaitSeconds,
  results: ResultsConfig,
  privacy: PrivacyConfig,
  approvals: ApprovalsConfig,
});

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

export function parseConfig(raw: unknown, file: string | undefined, env: NodeJS.ProcessEnv = process.env): Config {
  const parsed = Config.safeParse(raw);
  if (!parsed.success) {
    const problems = explainIssues(parsed.error.issues, raw).map((line) => `  - ${line}`);
    throw new ConfigError(`Invalid config${file ? ` in ${file}` : ''}:\n${problems.join('\n')}`);
  }
  const config = parsed.data;
  const unknown = unknownPrivacyProviders(config.privacy, Object.keys(config.providers));
  if (unknown.length > 0) {
    throw new ConfigError(
      `Invalid config${file ? ` in ${file}` : ''}:\n  - privacy.providers: ${unknown.join(', ')} ${unknown.length > 1 ? 'are' : 'is'} not among the providers (${Object.keys(config.providers).join(', ') || 'none configured'})`,
    );
  }
  const base = file ? dirname(resolve(file)) : process.cwd();
  for (const provider of Object.values(config.providers)) {
    if (!isMcpProvider(provider) && !/^https?:\/\//.test(provider.openapi))
      provider.openapi = resolve(base, provider.openapi);
  }
  try {
    applyTemporalEnv(config.temporal, env);
  } catch (e) {
    throw new ConfigError((e as Error).message);
  }
  applyBlobEnv(config.blobs, env);
  config.dataDir = resolve(base, env.DURABLE_CODEMODE_DATA_DIR || config.dataDir);
  return config;
}

/** The config with `providers` replaced by these (validated like the file's own). */
export function withProviders(config: Config, providers: Record<string, unknown>): Config {
  return { ...config, providers: ProvidersConfig.parse(providers) };
}
