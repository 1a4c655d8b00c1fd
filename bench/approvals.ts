/**
 * `npm run bench:approvals`: what a human in the loop costs.
 *
 * 1. From an approval's answer (the job service's Update) to the job's next API call, over ROUNDS
 *    jobs: the wait released the sandbox, so the answer's round replays the journal in a fresh one.
 * 2. What JOBS jobs waiting for approval hold in the worker (live sandboxes, RSS), side by side with
 *    JOBS jobs in a durable sleep, whose sandboxes stay live between rounds.
 *
 * One in-process worker against the Temporal dev server and a local HTTP API that timestamps requests.
 */
import { randomUUID } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import { createServer } from 'node:http';
import { mkdtemp, rm } from 'node:fs/promises';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DefaultLogger, Runtime } from '@temporalio/worker';
import { parseConfig } from '../cli/config.ts';
import { JobService } from '../jobs/service.ts';
import { connectClient, connectWorker } from '../temporal/connection.ts';
import { startDevServer } from '../temporal/dev-server.ts';
import { startWorker } from '../temporal/worker.ts';

Runtime.install({ logger: new DefaultLogger('WARN') });

const ROUNDS = 10;
const JOBS = 20;
const log = (line: string) => console.error(`[bench] ${line}`);
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

const arrivals: number[] = [];
const api = createServer((req, res) => {
  arrivals.push(Date.now());
  req.resume();
  req.on('end', () => res.writeHead(200, { 'content-type': 'application/json' }).end('{}'));
});
await new Promise<void>((resolve) => api.listen(0, '127.0.0.1', resolve));
const dataDir = await mkdtemp(join(tmpdir(), 'dcm-bench-approvals-'));
const spec = join(dataDir, 'api.json');
writeFileSync(
  spec,
  JSON.stringify({
    openapi: '3.0.3',
    info: { title: 'bench', version: '1' },
    paths: { '/ping': { get: { operationId: 'ping', responses: { 200: { description: 'ok' } } } } },
  }),
);

const env = await startDevServer({});
const config = parseConfig(
  {
    providers: { api: { openapi: spec, baseUrl: `http://127.0.0.1:${(api.address() as AddressInfo).port}` } },
    dataDir,
    temporal: { taskQueue: `bench-approvals-${randomUUID().slice(0, 8)}` },
  },
  undefined,
  { TEMPORAL_ADDRESS: env.address },
);
const connection = await connectWorker(config.temporal);
const worker = await startWorker(config, connection);
const client = await connectClient(config.temporal);
const jobs = new JobService(client, config);

async function waitingFor(jobId: string): Promise<void> {
  while ((await jobs.status(jobId)).status !== 'waiting_for_approval') await sleep(100);
}

const rssMb = () => Math.round(process.memoryUsage().rss / 2 ** 20);
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];

try {
  // 1. Answer → next API call.
  const latencies: number[] = [];
  for (let i = 0; i < ROUNDS; i++) {
    const jobId = await jobs.startScript({
      code: `async () => { await api.request({ method: 'GET', path: '/ping' }); await approve('go on?'); await api.request({ method: 'GET', path: '/ping' }); }`,
    });
    await waitingFor(jobId);
    const before = arrivals.length;
    const answeredAt = Date.now();
    await jobs.answer(jobId, { approved: true, via: 'bench' });
    while (arrivals.length === before) await sleep(5);
    latencies.push(arrivals[before] - answeredAt);
    await jobs.status(jobId, 30);
  }
  log(`answer → next API call: median ${median(latencies)} ms, max ${Math.max(...latencies)} ms over ${ROUNDS} jobs`);

  // 2. What waiting jobs hold, beside sleeping ones.
  const hold = async (what: string, code: string, waiting: (id: string) => Promise<void>) => {
    global.gc?.();
    const rssBefore = rssMb();
    const ids = await Promise.all(Array.from({ length: JOBS }, () => jobs.startScript({ code })));
    for (const id of ids) await waiting(id);
    await sleep(2_000);
    global.gc?.();
    const held = { sandboxes: worker.sessions.size, rssMb: rssMb() - rssBefore };
    log(`${JOBS} jobs ${what}: ${held.sandboxes} live sandboxes in the worker, RSS +${held.rssMb} MB`);
    for (const id of ids) await jobs.cancel(id);
    return held;
  };
  const sleeping = await hold(
    'in sleep(10 min)',
    `async () => { await api.request({ method: 'GET', path: '/ping' }); await sleep(600000); }`,
    async (id) => {
      while (((await jobs.status(id)).rounds ?? 0) < 1) await sleep(100);
    },
  );
  await worker.sessions.close();
  const approving = await hold(
    'waiting for approval',
    `async () => { await api.request({ method: 'GET', path: '/ping' }); await approve('go on?'); }`,
    waitingFor,
  );
  console.log(
    JSON.stringify({
      answerToNextCallMs: { median: median(latencies), max: Math.max(...latencies), samples: latencies },
      heldByWaitingJobs: { jobs: JOBS, sleeping, approving },
    }),
  );
} finally {
  await worker.shutdown();
  await connection.close();
  await client.connection.close();
  await env.teardown();
  api.close();
  await rm(dataDir, { recursive: true, force: true });
}
