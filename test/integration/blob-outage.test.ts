/**
 * An outage of the local blob store is waited out: its directory is moved away for 20 s while a job
 * keeps every round's API response and step value in it, and (its live session dropped) must replay
 * its journal from it; the job stalls, then completes once the directory is back. Without the wait,
 * the replay's five attempts fail within about 16 s and the job with them.
 */
import { existsSync, renameSync } from 'node:fs';
import { join } from 'node:path';
import { setTimeout as delay } from 'node:timers/promises';
import { afterAll, beforeAll, expect, it } from 'vitest';
import {
  demoProvidersConfig,
  startCrmApi,
  startSheetsApi,
  type CrmApi,
  type SheetsApi,
} from '../../demo-apis/index.ts';
import { eventually, startInProcessStack, testConfig, type InProcessStack } from '../harness.ts';

const ROUNDS = 8;
/** The outage starts during the sleep after this round, so the next round replays (openSession). */
const OUTAGE_AFTER = 3;
const ROWS = 200;
const OUTAGE_MS = 20_000;

let crm: CrmApi;
let sheets: SheetsApi;
let stack: InProcessStack;

beforeAll(async () => {
  crm = await startCrmApi();
  sheets = await startSheetsApi({ sheets: { leads: ROWS } });
  stack = await startInProcessStack(testConfig({ providers: demoProvidersConfig({ crm, sheets }) }));
});

afterAll(async () => {
  await stack?.close();
  await crm?.close();
  await sheets?.close();
});

it('waits while the blob directory is moved away for 20 s, then completes the job', async () => {
  const blobs = join(stack.config.dataDir, 'blobs');
  const started = await stack.jobs.execute({
    code: `async () => {
      let rows = 0;
      for (let i = 0; i < ${ROUNDS}; i++) {
        const csv = await sheets.request({ method: 'GET', path: '/sheets/leads/csv' });
        rows += (await step('rows ' + i, () => CSV.parse(csv))).length;
        progress(i + 1, ${ROUNDS}, 'rounds');
        await sleep(i + 1 === ${OUTAGE_AFTER} ? 1000 : 10);
      }
      return rows;
    }`,
    waitSeconds: 0,
  });
  const done = async () => (await stack.jobs.status(started.job_id)).progress?.done ?? 0;
  await eventually(async () => ((await done()) >= OUTAGE_AFTER ? true : undefined), 60_000, 'the rounds before');

  renameSync(blobs, `${blobs}.away`);
  try {
    // After its sleep the job finds no live session: the replay needs every response and step.
    await stack.worker.sessions.close();
    await delay(OUTAGE_MS);
    expect(await done()).toBe(OUTAGE_AFTER);
    expect((await stack.jobs.status(started.job_id)).status).toBe('running');
    expect(existsSync(blobs)).toBe(false);
  } finally {
    renameSync(`${blobs}.away`, blobs);
  }

  const view = await stack.jobs.status(started.job_id, 60);
  expect(view).toMatchObject({ status: 'completed', result: ROUNDS * ROWS });
});
