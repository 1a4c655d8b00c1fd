/**
 * Several workers on one task queue, as in a deployment: when the worker holding a job's live
 * sandbox dies, another worker replays the job and finishes it; a rolling restart (SIGTERM each
 * worker in turn, starting a replacement) finishes every job without a duplicate API call.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CRM_SPEC_PATH, startCrmApi, type CrmApi } from '../../demo-apis/crm.ts';
import type { Config } from '../../cli/config.ts';
import { JobService } from '../../jobs/service.ts';
import {
  connectTestClient,
  eventually,
  roundHolderPid,
  spawnWorker,
  testConfig,
  writeConfigFile,
  type ChildWorker,
} from '../harness.ts';

let crm: CrmApi;
const workers: ChildWorker[] = [];

beforeAll(async () => {
  crm = await startCrmApi({ latencyMs: 100 });
});

afterAll(async () => {
  await Promise.all(workers.map((w) => w.kill('SIGTERM')));
  await crm?.close();
});

function importScript(prefix: string, calls: number) {
  return `async () => {
    for (let i = 0; i < ${calls}; i++) {
      await crm.request({ method: 'POST', path: '/leads', body: { name: '${prefix} ' + i, email: '${prefix}' + i + '@example.com' } });
      progress(i + 1, ${calls});
    }
    return 'done';
  }`;
}

async function setup(): Promise<{ config: Config; configFile: string; jobs: JobService; close(): Promise<void> }> {
  const config = testConfig({ providers: { crm: { openapi: CRM_SPEC_PATH, baseUrl: crm.url } } });
  const client = await connectTestClient(config);
  return {
    config,
    configFile: writeConfigFile(config),
    jobs: new JobService(client, config),
    close: () => client.connection.close(),
  };
}

/** The pid of the worker process that ran the job's latest round. */
async function sessionHolder(config: Config, jobId: string): Promise<number | undefined> {
  const client = await connectTestClient(config);
  try {
    return await roundHolderPid(client, jobId);
  } finally {
    await client.connection.close();
  }
}

describe('two workers on one task queue', () => {
  it('moves a job to the other worker when the one holding its session is killed', async () => {
    crm.reset();
    const { config, configFile, jobs, close } = await setup();
    workers.push(await spawnWorker(configFile), await spawnWorker(configFile));
    const started = await jobs.execute({ code: importScript('failover', 40), waitSeconds: 0 });
    const posts = () => crm.stats().byRoute['POST /leads'] ?? 0;
    await eventually(() => (posts() >= 10 ? true : undefined), 60_000, '10 calls');
    const pid = await eventually(() => sessionHolder(config, started.job_id), 10_000, 'the session holder');
    const holder = workers.find((w) => w.process.pid === pid)!;
    expect(holder).toBeDefined();
    await holder.kill('SIGKILL');
    const killedAt = Date.now();
    const before = posts();
    await eventually(() => (posts() > before + 1 ? true : undefined), 60_000, 'progress after the kill');
    const failoverMs = Date.now() - killedAt;

    const done = await eventually(async () => {
      const view = await jobs.status(started.job_id, 20);
      return view.status === 'running' ? undefined : view;
    }, 120_000);
    expect(done.status).toBe('completed');
    expect(crm.stats().leads).toBe(40);
    expect(crm.stats().duplicateEmails).toBe(0);
    const survivor = await sessionHolder(config, started.job_id);
    expect(survivor).not.toBe(pid);
    // Bounded by the 5 s session pickup timeout (plus the in-flight call's heartbeat timeout).
    console.log(`fail-over: kill → progress in ${failoverMs} ms`);
    expect(failoverMs).toBeLessThan(60_000);
    await close();
  });

  it('finishes every job without duplicates through a rolling restart (SIGTERM one worker at a time)', async () => {
    crm.reset();
    const { configFile, jobs, close } = await setup();
    const fleet = [await spawnWorker(configFile), await spawnWorker(configFile)];
    workers.push(...fleet);
    const started = await Promise.all(
      ['roll-a', 'roll-b', 'roll-c'].map((p) => jobs.execute({ code: importScript(p, 30), waitSeconds: 0 })),
    );
    for (const old of [...fleet]) {
      await eventually(
        () => ((crm.stats().byRoute['POST /leads'] ?? 0) >= 15 * (fleet.indexOf(old) + 1) ? true : undefined),
        60_000,
        'progress',
      );
      const replacement = await spawnWorker(configFile);
      workers.push(replacement);
      await old.kill('SIGTERM');
      expect(old.process.exitCode ?? old.process.signalCode).toBeDefined();
    }
    for (const job of started) {
      const done = await eventually(async () => {
        const view = await jobs.status(job.job_id, 20);
        return view.status === 'running' ? undefined : view;
      }, 180_000);
      expect(done.status).toBe('completed');
    }
    const stats = crm.stats();
    expect(stats.leads).toBe(90);
    expect(stats.duplicateEmails).toBe(0);
    await close();
  });
});
