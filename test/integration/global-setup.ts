/**
 * Starts one real Temporal dev server (the CLI binary from PATH / TEMPORAL_CLI_PATH) for the whole
 * test run and hands its address to the tests. Each test file uses task queues of its own.
 */
import type { TestProject } from 'vitest/node';
import { startDevServer } from '../../temporal/dev-server.ts';

declare module 'vitest' {
  export interface ProvidedContext {
    temporalAddress: string;
  }
}

export default async function setup(project: TestProject) {
  const env = await startDevServer({});
  const address = env.connection.options.address;
  project.provide('temporalAddress', address);
  return async () => {
    await env.teardown();
  };
}
