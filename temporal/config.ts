/** Where Temporal is and which task queue the product's workers share (`temporal` in the config). */
import { loadClientConfigProfile } from '@temporalio/envconfig';
import { z } from 'zod';
import { configObject } from '../core/config-object.ts';

export const TemporalConfig = configObject({
  address: z.string().default('localhost:7233'),
  namespace: z.string().default('default'),
  taskQueue: z.string().default('durable-codemode'),
}).prefault({});

/** What one worker process takes on at once (`worker` in the config). */
export const WorkerConfig = configObject({
  /** Live sandboxes (one per running job) a worker holds at once; more jobs wait, idle ones are set aside and replayed later. */
  maxConcurrentSessions: z.number().int().positive().default(100),
}).prefault({});

export type TemporalConfig = z.infer<typeof TemporalConfig>;
export type WorkerConfig = z.infer<typeof WorkerConfig>;

export class TemporalSettingsError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'TemporalSettingsError';
  }
}

/**
 * The environment's say, as the SDK's environment configuration gives it (TEMPORAL_ADDRESS /
 * TEMPORAL_NAMESPACE, else the TOML profile picked by TEMPORAL_PROFILE from TEMPORAL_CONFIG_FILE or
 * ~/.config/temporalio/temporal.toml), over the config file; DURABLE_CODEMODE_TASK_QUEUE names the
 * task queue. temporal/connection.ts adds TLS and the API key from the same sources.
 */
export function applyTemporalEnv(temporal: TemporalConfig, env: NodeJS.ProcessEnv): void {
  let profile: { address?: string; namespace?: string };
  try {
    profile = loadClientConfigProfile({ overrideEnvVars: env as Record<string, string> });
  } catch (e) {
    throw new TemporalSettingsError(
      `Invalid Temporal connection settings: ${(e as Error).message} (check TEMPORAL_PROFILE and TEMPORAL_CONFIG_FILE)`,
    );
  }
  temporal.address = profile.address || temporal.address;
  temporal.namespace = profile.namespace || temporal.namespace;
  temporal.taskQueue = env.DURABLE_CODEMODE_TASK_QUEUE || temporal.taskQueue;
}
