/**
 * The Temporal server of the integration tests, one for the whole run; each test file uses task
 * queues of its own. By default a Temporal dev server (the CLI binary from PATH /
 * TEMPORAL_CLI_PATH). With DCM_TEST_CLUSTER=native, a private native deployment
 * (deploy/native/cluster.sh: Temporal on PostgreSQL, versitygw as the S3 server, ...), whose S3
 * server the S3 tests then use too. With DCM_TEST_TEMPORAL_ADDRESS (and DCM_TEST_TEMPORAL_NAMESPACE,
 * default `default`), a server that is already running. The build step runs first, so every
 * worker the tests start finds its workflow bundle prebuilt.
 */
import type { TestProject } from 'vitest/node';
import { startDevServer } from '../../temporal/dev-server.ts';
import { buildWorkflowBundles } from '../../temporal/workflow-bundle.ts';
import { startNativeCluster, type S3Access } from '../native-cluster.ts';

declare module 'vitest' {
  export interface ProvidedContext {
    temporalAddress: string;
    temporalNamespace: string;
    /** A real S3 server with the product's bucket and credentials, when the run has one. */
    s3: S3Access | null;
  }
}

export default async function setup(project: TestProject) {
  await buildWorkflowBundles();
  if (process.env.DCM_TEST_CLUSTER === 'native') {
    const cluster = await startNativeCluster();
    project.provide('temporalAddress', cluster.temporalAddress);
    project.provide('temporalNamespace', cluster.namespace);
    project.provide('s3', cluster.s3);
    return () => cluster.destroy();
  }
  if (process.env.DCM_TEST_TEMPORAL_ADDRESS) {
    project.provide('temporalAddress', process.env.DCM_TEST_TEMPORAL_ADDRESS);
    project.provide('temporalNamespace', process.env.DCM_TEST_TEMPORAL_NAMESPACE ?? 'default');
    project.provide('s3', null);
    return;
  }
  const env = await startDevServer({});
  project.provide('temporalAddress', env.address);
  project.provide('temporalNamespace', 'default');
  project.provide('s3', null);
  return async () => {
    await env.teardown();
  };
}
