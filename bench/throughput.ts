/**
 * `npm run bench:throughput`: how throughput grows from one worker process to two on this machine,
 * and what a job costs in worker CPU and memory, so an operator can size a deployment.
 *
 * A fixed mix of JOBS jobs is submitted at once; each computes a step (sorting 50,000 numbers),
 * makes 4 sequential GET /leads and one Promise.all of 5 POST /leads against the demo CRM (20 ms
 * latency). Workers are separate processes (`durable-codemode worker`) on one task queue, sharing
 * the machine with the Temporal dev server, as in a one-machine deployment.
 */
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { availableParallelism, tmpdir } from 'node:os';
import { join } from 'node:path';
import { DefaultLogger, Runtime } from '@temporalio/worker';
import { CRM_SPEC_PATH, startCrmApi } from '../demo-apis/crm.ts';
import { parseConfig } from '../cli/config.ts';
import { JobService } from '../jobs/service.ts';
import { connectClient } from '../temporal/connection.ts';
import { startDevServer } from '../temporal/dev-server.ts';
import { spawnWorker, type WorkerProcess } from './worker-process.ts';

Runtime.install({ logger: new DefaultLogger('WARN') });

const JOBS = 60;
const WORKER_COUNTS = [1, 2];
const CRM_LATENCY_MS = 20;

const SCRIPT = `async () => {
  const sorted = await step('sort', () => Array.from({ length: 50000 }, () => Math.random()).sort((a, b) => a - b).length);
  for (let i = 0; i < 4; i++) await crm.request({ method: 'GET', path: '/leads', query: { limit: 5 } });
  const created = await Promise.all(Array.from({ length: 5 }, (_, i) =>
    crm.request({ method: 'POST', path: '/leads', body: { name: 'T' + i, email: input.tag + '.' + i + '@example.com' } })));
  return { sorted, created: created.length };
}`;

const log = (line: string) => console.error(`[bench] ${line}`);

interface Phase {
  workers: number;
  wallMs: number;
  jobsPerMinute: number;
  workerCpuMsPerJob: number;
  peakRssMbPerWorker: number;
}

async function main(): Promise<void> {
  const env = await startDevServer({});
  const crm = await startCrmApi({ latencyMs: CRM_LATENCY_MS });
  const address = env.address;
  const phases: Phase[] = [];
  try {
    for (const count of WORKER_COUNTS) {
      const dataDir = await mkdtemp(join(tmpdir(), 'dcm-throughput-'));
      const config = parseConfig(
        {
          providers: { crm: { openapi: CRM_SPEC_PATH, baseUrl: crm.url } },
          dataDir,
          temporal: { taskQueue: `throughput-${randomUUID().slice(0, 8)}` },
        },
        undefined,
        { TEMPORAL_ADDRESS: address },
      );
      const configFile = join(dataDir, 'config.json');
      await writeFile(configFile, JSON.stringify(config));
      const client = await connectClient(config.temporal);
      const jobs = new JobService(client, config);
      const workers: WorkerProcess[] = [];
      try {
        for (let i = 0; i < count; i++) workers.push(await spawnWorker(configFile, address));
        log(`${count} worker(s): warm-up`);
        const warm = await Promise.all(
          [0, 1].map((i) => jobs.execute({ code: SCRIPT, input: { tag: `warm-${count}-${i}` }, waitSeconds: 60 })),
        );
        assert.ok(
          warm.every((v) => v.status === 'completed'),
          'warm-up jobs must complete',
        );
        crm.reset();
        const cpuBefore = workers.reduce((n, w) => n + w.cpuSeconds(), 0);
        log(`${count} worker(s): ${JOBS} jobs`);
        const start = performance.now();
        const started = await Promise.all(
          Array.from({ length: JOBS }, (_, i) =>
            jobs.execute({ code: SCRIPT, input: { tag: `job-${count}-${i}` }, waitSeconds: 0 }),
          ),
        );
        for (const job of started) {
          let view = job;
          while (view.status === 'running') view = await jobs.status(job.job_id, 30);
          assert.equal(view.status, 'completed', `job ${job.job_id}: ${JSON.stringify(view.error)}`);
        }
        const wallMs = performance.now() - start;
        const cpuMs = (workers.reduce((n, w) => n + w.cpuSeconds(), 0) - cpuBefore) * 1000;
        const stats = crm.stats();
        assert.equal(stats.leads, JOBS * 5, 'every job creates its 5 leads once');
        assert.equal(stats.duplicateEmails, 0);
        phases.push({
          workers: count,
          wallMs,
          jobsPerMinute: (JOBS / wallMs) * 60_000,
          workerCpuMsPerJob: cpuMs / JOBS,
          peakRssMbPerWorker: Math.max(...workers.map((w) => w.memory().peakRss)) / 1024 / 1024,
        });
      } finally {
        await Promise.all(workers.map((w) => w.kill('SIGTERM')));
        await client.connection.close();
        await rm(dataDir, { recursive: true, force: true });
      }
    }
  } finally {
    await crm.close();
    await env.teardown();
  }

  console.log(
    `\ndurable-codemode throughput — ${new Date().toISOString().slice(0, 10)}, ${availableParallelism()} CPUs, ${JOBS} jobs of 10 calls + a CPU step, CRM latency ${CRM_LATENCY_MS} ms\n`,
  );
  console.log('| workers | wall | jobs/min | × one worker | worker CPU per job | peak RSS per worker |');
  console.log('|---:|---:|---:|---:|---:|---:|');
  for (const p of phases) {
    console.log(
      `| ${p.workers} | ${(p.wallMs / 1000).toFixed(1)} s | ${p.jobsPerMinute.toFixed(0)} | ×${(p.jobsPerMinute / phases[0].jobsPerMinute).toFixed(2)} | ${p.workerCpuMsPerJob.toFixed(0)} ms | ${p.peakRssMbPerWorker.toFixed(0)} MB |`,
    );
  }
  console.log(
    `\nBENCH_JSON ${JSON.stringify({ date: new Date().toISOString(), cpus: availableParallelism(), jobs: JOBS, crmLatencyMs: CRM_LATENCY_MS, phases })}`,
  );
}

await main();
