/**
 * Versioning guard: every workflow history recorded by an earlier release (test/fixtures/histories,
 * written by `npm run record-histories`) must replay with the current workflow code. A change that
 * would make a job started under an older release fail on the next deploy fails here instead;
 * guard such changes with workflow.patched().
 */
import { readdirSync, readFileSync } from 'node:fs';
import { historyFromJSON } from '@temporalio/common/lib/proto-utils.js';
import { Worker } from '@temporalio/worker';
import { beforeAll, describe, expect, it } from 'vitest';
import { PREBUILT_DIR, workflowBundle } from '../../temporal/workflow-bundle.ts';

const DIR = new URL('../fixtures/histories/', import.meta.url);
const files = readdirSync(DIR)
  .filter((f) => f.endsWith('.json'))
  .sort();

describe('recorded histories replay with the current workflow code', () => {
  // The bundle workers run: the build step's, built here when the code changed since.
  let codePath: string;

  beforeAll(async () => {
    ({ path: codePath } = await workflowBundle(undefined, { cacheDir: PREBUILT_DIR }));
  });

  it('has recorded histories to replay', () => {
    expect(files.length).toBeGreaterThanOrEqual(5);
  });

  it.each(files)('%s', async (file) => {
    const history = historyFromJSON(JSON.parse(readFileSync(new URL(file, DIR), 'utf8')));
    await expect(Worker.runReplayHistory({ workflowBundle: { codePath } }, history)).resolves.toBeUndefined();
  });
});
