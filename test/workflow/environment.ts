/**
 * Temporal's time-skipping test environment for the workflow tests: the Java test server
 * (io.temporal:temporal-test-server, installed by scripts/toolchain.sh into
 * .tools/temporal-test-server-<version>/), where timers of days pass in moments.
 */
import { existsSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { TestWorkflowEnvironment } from '@temporalio/testing';
import { DefaultLogger, Runtime, type WorkflowBundlePath } from '@temporalio/worker';
import { PREBUILT_DIR, workflowBundle as locateWorkflowBundle } from '../../temporal/workflow-bundle.ts';

const TOOLS = fileURLToPath(new URL('../../.tools/', import.meta.url));

/** The test server's launcher: TEMPORAL_TEST_SERVER_PATH (set by scripts/toolchain.sh), else the one under .tools. */
export function testServerPath(): string {
  const fromEnv = process.env.TEMPORAL_TEST_SERVER_PATH;
  if (fromEnv) return fromEnv;
  const installed = existsSync(TOOLS)
    ? readdirSync(TOOLS)
        .filter((name) => name.startsWith('temporal-test-server-'))
        .map((name) => join(TOOLS, name, 'temporal-test-server'))
        .filter((path) => existsSync(path))
    : [];
  if (installed.length === 0) {
    throw new Error(
      "Temporal's time-skipping test server is not installed: run `. scripts/toolchain.sh` (it needs java and mvn), " +
        'or set TEMPORAL_TEST_SERVER_PATH to the launcher of io.temporal:temporal-test-server.',
    );
  }
  return installed.sort().at(-1)!;
}

export async function timeSkippingEnvironment(): Promise<TestWorkflowEnvironment> {
  // The failures these tests provoke on purpose would bury the test output as warnings.
  // (The core's own warnings too, e.g. that the test server lacks a newer server's capability.)
  Runtime.install({
    logger: new DefaultLogger('ERROR'),
    telemetryOptions: { logging: { filter: { core: 'ERROR', other: 'ERROR' }, forward: {} } },
  });
  return TestWorkflowEnvironment.createTimeSkipping({
    server: { executable: { type: 'existing-path', path: testServerPath() } },
  });
}

/** The product's workflow bundle, as workers run it: the build step's, built here when the code changed since. */
export async function workflowBundle(): Promise<WorkflowBundlePath> {
  return { codePath: (await locateWorkflowBundle(undefined, { cacheDir: PREBUILT_DIR })).path };
}
