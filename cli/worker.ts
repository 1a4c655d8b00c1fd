/** `durable-codemode worker`: a worker against an existing Temporal server. */
import { connectWorker } from '../temporal/connection.ts';
import { startWorker } from '../temporal/worker.ts';
import { checkCredentials } from './credentials.ts';
import type { Values } from './options.ts';
import { loadRuntimeConfig } from './runtime-config.ts';
import { onShutdown } from './shutdown.ts';
import { afterRound, releaseStartupMemory, takeCollector } from './process-memory.ts';
import { installWorkerLogging } from './worker-logging.ts';

export async function run(values: Values): Promise<void> {
  const { config } = loadRuntimeConfig(values);
  checkCredentials(config.providers);
  installWorkerLogging();
  const connection = await connectWorker(config.temporal);
  const worker = await startWorker(config, connection, { beforePolling: takeCollector, afterRound });
  console.error(
    `worker polling task queue "${config.temporal.taskQueue}" (sessions on "${worker.sessionTaskQueue}") at ${config.temporal.address}, namespace ${config.temporal.namespace}; providers: ${Object.keys(config.providers).join(', ')}`,
  );
  setImmediate(releaseStartupMemory);
  onShutdown(() => worker.shutdown());
  await worker.done;
  await connection.close();
}
