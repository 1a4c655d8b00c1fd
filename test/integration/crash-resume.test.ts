/**
 * The promise of the product: a job survives its worker being killed. A real worker process is
 * SIGKILLed in the middle of 40 sequential API calls; a new worker process replays the journal
 * and finishes, and the API's own count shows no completed call was made twice.
 */
import { afterAll, beforeAll, expect, it } from 'vitest';
import { CRM_SPEC_PATH, startCrmApi, type CrmApi } from '../../demo-apis/crm.ts';
import { JobService } from '../../jobs/service.ts';
import {
  connectTestClient,
  eventually,
  spawnWorker,
  testConfig,
  writeConfigFile,
  type ChildWorker,
} from '../harness.ts';

const CALLS = 40;
let crm: CrmApi;
const workers: ChildWorker[] = [];

beforeAll(async () => {
  crm = await startCrmApi({ latencyMs: 100 });
});

afterAll(async () => {
  await Promise.all(workers.map((w) => w.kill('SIGTERM')));
  await crm?.close();
});

it('finishes a job after its worker is killed with SIGKILL, repeating no completed API call', async () => {
  const config = testConfig({ providers: { crm: { openapi: CRM_SPEC_PATH, baseUrl: crm.url } } });
  const configFile = writeConfigFile(config);
  workers.push(await spawnWorker(configFile));
  const client = await connectTestClient(config);
  const jobs = new JobService(client, config);

  const started = await jobs.execute({
    code: `async () => {
      const ids = [];
      for (let i = 0; i < ${CALLS}; i++) {
        const lead = await crm.request({ method: 'POST', path: '/leads', body: { name: 'Lead ' + i, email: 'lead' + i + '@example.com' } });
        ids.push(lead.id);
        progress(i + 1, ${CALLS}, 'creating leads');
      }
      return { ids };
    }`,
    waitSeconds: 0,
  });
  expect(started.status).toBe('running');

  const posts = () => crm.stats().byRoute['POST /leads'] ?? 0;
  await eventually(() => (posts() >= 15 ? true : undefined), 60_000, '15 calls');
  await workers[0].kill('SIGKILL');
  const callsBeforeKill = posts();
  expect(callsBeforeKill).toBeLessThan(CALLS);

  workers.push(await spawnWorker(configFile));
  const done = await eventually(
    async () => {
      const view = await jobs.status(started.job_id, 20);
      return view.status === 'running' ? undefined : view;
    },
    150_000,
    'the job to finish',
  );

  expect(done.status).toBe('completed');
  const ids = (done.result as { ids: string[] }).ids;
  expect(ids).toHaveLength(CALLS);
  expect(new Set(ids).size).toBe(CALLS);
  const stats = crm.stats();
  // Every lead exists exactly once on the API's side...
  expect(stats.leads).toBe(CALLS);
  expect(stats.duplicateEmails).toBe(0);
  // ...and at most the one call in flight at the kill reached the API a second time: either it had
  // been applied (then its idempotency key answered the retry from the cache) or it had not.
  expect(stats.byRoute['POST /leads']).toBeLessThanOrEqual(CALLS + 1);
  expect(stats.idempotentReplays).toBeLessThanOrEqual(1);
  await client.connection.close();
});
