/**
 * A worker process: one Temporal worker on the shared task queue (workflows and the shared
 * activities: opening sessions, API calls, saving the journal) and one on a task queue of its own
 * with only the session activity, through which the workflow reaches the live sandbox sessions
 * this process holds (Temporal's worker-specific task queue pattern).
 */
import { randomUUID } from 'node:crypto';
import { hostname } from 'node:os';
import { join } from 'node:path';
import { Worker, type NativeConnection } from '@temporalio/worker';
import { HEARTBEAT_THROTTLE_MS, STICKY_PICKUP_TIMEOUT_MS } from '../core/timeouts.ts';
import { createActivities } from '../activities/index.ts';
import { SessionRegistry } from '../activities/sessions.ts';
import type { BlobsConfig } from '../blobs/config.ts';
import { createBlobStore } from '../blobs/index.ts';
import type { ProvidersConfig } from '../providers/config.ts';
import { readyProviders } from '../providers/ready.ts';
import { requestValidators } from '../providers/validate.ts';
import { Privacy } from '../privacy/privacy.ts';
import type { PrivacyConfig } from '../privacy/config.ts';
import { codecKeyFromEnv, dataConverter, FAILURE_CONVERTER_PATH } from './codec.ts';
import type { TemporalConfig, WorkerConfig } from './config.ts';
import { PREBUILT_DIR, workflowBundle } from './workflow-bundle.ts';

export interface RunningWorker {
  /** The task queue only this process polls. */
  sessionTaskQueue: string;
  sessions: SessionRegistry;
  /** Resolves when both workers have stopped. */
  done: Promise<void>;
  shutdown(): Promise<void>;
}

/** The parts of the config a worker process uses. */
export interface WorkerSettings {
  temporal: TemporalConfig;
  worker: WorkerConfig;
  providers: ProvidersConfig;
  blobs: BlobsConfig;
  dataDir: string;
  privacy: PrivacyConfig;
}

export interface StartOptions {
  /** Called once the workers exist, just before they poll (no job has run in this process yet). */
  beforePolling?: () => void;
  /** Told after each round whether it moved large values: the process may collect its garbage (ActivityDeps). */
  afterRound?: (large: boolean) => void;
}

export async function startWorker(
  config: WorkerSettings,
  connection: NativeConnection,
  { beforePolling, afterRound }: StartOptions = {},
): Promise<RunningWorker> {
  const { namespace, taskQueue } = config.temporal;
  const sessionTaskQueue = `${taskQueue}/session/${hostname()}-${process.pid}-${randomUUID().slice(0, 8)}`;
  const sessions = new SessionRegistry({ idleMs: 10 * 60_000, maxSessions: config.worker.maxConcurrentSessions });
  const blobs = createBlobStore(config.blobs, config.dataDir);
  // Only what the worker keeps: the specs' text is dropped once the validators are built.
  const { specs, sandboxProviders, upstream } = await readyProviders(config.providers, { cache: blobs });
  const activities = createActivities({
    providers: config.providers,
    sandboxProviders,
    upstream,
    sessions,
    sessionTaskQueue,
    blobs,
    blobThresholdBytes: config.blobs.thresholdBytes,
    validators: requestValidators(config.providers, specs),
    privacy: new Privacy(config.privacy, { store: blobs, codecKey: codecKeyFromEnv() }),
    afterRound,
  });
  // On SIGTERM (a deploy), API calls in flight get this long to finish before they are cancelled;
  // live sessions end with the process and their jobs replay on another worker.
  const shutdownGraceTime = '10 seconds';
  const converter = dataConverter();
  const bundle = await workflowBundle(converter.failureConverterPath && FAILURE_CONVERTER_PATH, {
    cacheDir: join(config.dataDir, 'workflow-bundles'),
  });
  if (bundle.builtInMs !== undefined)
    console.error(
      `No workflow bundle of this code in ${PREBUILT_DIR} (\`npm run build\` makes one), so the worker built it in ${(bundle.builtInMs / 1000).toFixed(1)} s and cached it as ${bundle.path}.`,
    );
  const sharedWorker = await Worker.create({
    connection,
    namespace,
    taskQueue,
    workflowBundle: { codePath: bundle.path },
    activities: activities.shared,
    dataConverter: converter,
    shutdownGraceTime,
    stickyQueueScheduleToStartTimeout: STICKY_PICKUP_TIMEOUT_MS,
    // Heartbeats reach the server within this, so a stalled attempt can tell it may have been given up.
    maxHeartbeatThrottleInterval: HEARTBEAT_THROTTLE_MS,
    // A frozen worker's open polls each swallow a task until its timeout: keep them few (1 non-sticky
    // workflow task poll, 1 activity task poll). One poll takes tasks as fast as the worker runs them.
    maxConcurrentWorkflowTaskPolls: 5,
    maxConcurrentActivityTaskPolls: 1,
  });
  const ownWorker = await Worker.create({
    connection,
    namespace,
    taskQueue: sessionTaskQueue,
    activities: activities.session,
    dataConverter: converter,
    shutdownGraceTime,
    maxHeartbeatThrottleInterval: HEARTBEAT_THROTTLE_MS,
  });
  beforePolling?.();
  const done = Promise.all([sharedWorker.run(), ownWorker.run()])
    .finally(async () => {
      await sessions.close();
      await activities.close();
      await upstream.close();
    })
    .then(() => undefined);
  return {
    sessionTaskQueue,
    sessions,
    done,
    async shutdown() {
      for (const w of [sharedWorker, ownWorker]) if (w.getState() === 'RUNNING') w.shutdown();
      await done;
    },
  };
}
