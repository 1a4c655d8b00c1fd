/**
 * A worker process: one Temporal worker on the shared task queue (workflows, sessions opened by
 * replay, API calls) and one on a task queue of its own, through which the workflow reaches the
 * live sandbox sessions this process holds (Temporal's worker-specific task queue pattern).
 */
import { randomUUID } from 'node:crypto';
import { hostname } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { bundleWorkflowCode, Worker, type NativeConnection, type WorkflowBundleWithSourceMap } from '@temporalio/worker';
import { createActivities } from '../activities/index.ts';
import { SessionRegistry } from '../activities/sessions.ts';
import { LocalBlobStore } from '../blobs/local-store.ts';
import type { Config } from './config.ts';
import { readyProviders } from './providers.ts';

const WORKFLOWS_PATH = fileURLToPath(new URL('../workflows/index.ts', import.meta.url));

let bundle: Promise<WorkflowBundleWithSourceMap> | undefined;

/** Bundling takes seconds; one bundle serves every worker of the process. */
function workflowBundle(): Promise<WorkflowBundleWithSourceMap> {
  bundle ??= bundleWorkflowCode({ workflowsPath: WORKFLOWS_PATH, logger: quietBundlerLogger });
  return bundle;
}

const quietBundlerLogger = { trace() {}, debug() {}, info() {}, warn: console.warn, error: console.error, log() {} };

export interface RunningWorker {
  /** The task queue only this process polls. */
  sessionTaskQueue: string;
  sessions: SessionRegistry;
  /** Resolves when both workers have stopped. */
  done: Promise<void>;
  shutdown(): Promise<void>;
}

export async function startWorker(config: Config, connection: NativeConnection): Promise<RunningWorker> {
  const { namespace, taskQueue } = config.temporal;
  const sessionTaskQueue = `${taskQueue}/session/${hostname()}-${process.pid}-${randomUUID().slice(0, 8)}`;
  const sessions = new SessionRegistry({ idleMs: 10 * 60_000, maxSessions: 200 });
  const providers = await readyProviders(config);
  const activities = createActivities({
    providers: config.providers,
    sandboxProviders: providers.sandboxProviders,
    upstream: providers.upstream,
    sessions,
    sessionTaskQueue,
    blobs: new LocalBlobStore(join(config.dataDir, 'blobs')),
    blobThresholdBytes: config.blobs.thresholdBytes,
  });
  const shared = await Worker.create({ connection, namespace, taskQueue, workflowBundle: await workflowBundle(), activities });
  const own = await Worker.create({ connection, namespace, taskQueue: sessionTaskQueue, activities });
  const done = Promise.all([shared.run(), own.run()]).finally(async () => {
    sessions.close();
    await providers.upstream.close();
  }).then(() => undefined);
  return {
    sessionTaskQueue,
    sessions,
    done,
    async shutdown() {
      for (const w of [shared, own]) if (w.getState() === 'RUNNING') w.shutdown();
      await done;
    },
  };
}
