/** Connecting to Temporal, with errors that tell the operator what to do. */
import { Client, Connection } from '@temporalio/client';
import { loadClientConnectConfig } from '@temporalio/envconfig';
import type { NativeConnection, NativeConnectionOptions } from '@temporalio/worker';
import { dataConverter } from './codec.ts';
import type { TemporalConfig } from './config.ts';

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
export function temporalConnectionOptions(
  temporal: TemporalConfig,
  env: NodeJS.ProcessEnv = process.env,
): NativeConnectionOptions & { address: string } {
  let loaded;
  try {
    loaded = loadClientConnectConfig({ overrideEnvVars: env as Record<string, string> });
  } catch (e) {
    throw new Error(
      `Invalid Temporal connection settings: ${(e as Error).message}\n` +
        "Check TEMPORAL_PROFILE, TEMPORAL_CONFIG_FILE and the files named by TEMPORAL_TLS_* (the Temporal SDK's environment configuration).",
    );
  }
  return { ...loaded.connectionOptions, address: temporal.address };
}

export async function connectClient(temporal: TemporalConfig): Promise<Client> {
  const options = temporalConnectionOptions(temporal);
  try {
    return new Client({
      connection: await Connection.connect({ ...options, connectTimeout: '5 seconds' }),
      namespace: temporal.namespace,
      dataConverter: dataConverter(),
    });
  } catch (e) {
    throw unreachable(options.address, e);
  }
}

export async function connectWorker(temporal: TemporalConfig): Promise<NativeConnection> {
  const options = temporalConnectionOptions(temporal);
  // The worker SDK (with its native core) is loaded only by processes that run a worker.
  const { NativeConnection } = await import('@temporalio/worker');
  try {
    return await NativeConnection.connect(options);
  } catch (e) {
    throw unreachable(options.address, e);
  }
}
