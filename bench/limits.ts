/**
 * `node --no-node-snapshot bench/limits.ts`: what the sandbox limits cost, and what a worker weighs.
 *
 * 1. CPU-bounded rounds: the same tight loop run in an isolate with isolated-vm's `timeout` (how
 *    every round runs) and without (unbounded), median of many runs; plus the per-call cost of the
 *    timeout on a trivial call.
 * 2. Memory: RSS of this process running an idle worker, then while 50 small jobs run at once
 *    (each holds a live sandbox across several rounds), sampled every 20 ms.
 *
 * Runs against its own in-memory Temporal dev server; prints a table and a `BENCH_JSON {...}` line.
 */
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DefaultLogger, Runtime } from '@temporalio/worker';
import { createIsolate } from '../sandbox/isolate.ts';
import { parseConfig } from '../cli/config.ts';
import { JobService } from '../jobs/service.ts';
import { connectClient, connectWorker } from '../temporal/connection.ts';
import { startDevServer } from '../temporal/dev-server.ts';
import { startWorker } from '../temporal/worker.ts';

Runtime.install({ logger: new DefaultLogger('WARN') });

const LOOP_RUNS = 21;
const LOOP_ITERATIONS = 20_000_000;
const CALLS = 2_000;
const JOBS = 50;
const log = (line: string) => console.error(`[bench] ${line}`);
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
const mib = (bytes: number) => Math.round((bytes / 1024 / 1024) * 10) / 10;

async function cpuBoundRounds() {
  const isolate = createIsolate(128);
  const context = await isolate.createContext();
  const loop = await isolate.compileScript(
    `{ let x = 0; for (let i = 0; i < ${LOOP_ITERATIONS}; i++) x = (x + i) % 1000003; x }`,
  );
  const noop = await isolate.compileScript('1');
  const bounded: number[] = [];
  const unbounded: number[] = [];
  await loop.run(context, { timeout: 60_000 }); // warm-up: compile and optimize
  const time = async (options: { timeout?: number }) => {
    const t = performance.now();
    await loop.run(context, options);
    return performance.now() - t;
  };
  // Interleaved, alternating which goes first, so drift and order effects hit both alike.
  for (let i = 0; i < LOOP_RUNS; i++) {
    if (i % 2 === 0) {
      bounded.push(await time({ timeout: 60_000 }));
      unbounded.push(await time({}));
    } else {
      unbounded.push(await time({}));
      bounded.push(await time({ timeout: 60_000 }));
    }
  }
  const calls = async (options: { timeout?: number }) => {
    const t = performance.now();
    for (let i = 0; i < CALLS; i++) await noop.run(context, options);
    return ((performance.now() - t) * 1000) / CALLS;
  };
  await calls({});
  const callBoundedRuns = [];
  const callUnboundedRuns = [];
  for (let i = 0; i < 6; i++) {
    callBoundedRuns.push(await calls({ timeout: 1000 }));
    callUnboundedRuns.push(await calls({}));
  }
  const callBounded = median(callBoundedRuns);
  const callUnbounded = median(callUnboundedRuns);
  isolate.dispose();
  return {
    loopBoundedMs: median(bounded),
    loopUnboundedMs: median(unbounded),
    callBoundedUs: callBounded,
    callUnboundedUs: callUnbounded,
  };
}

async function workerMemory() {
  const env = await startDevServer({});
  const dataDir = await mkdtemp(join(tmpdir(), 'dcm-bench-limits-'));
  const config = parseConfig({ dataDir, temporal: { taskQueue: 'bench-limits' } }, undefined, {
    TEMPORAL_ADDRESS: env.address,
  });
  const connection = await connectWorker(config.temporal);
  const worker = await startWorker(config, connection);
  const client = await connectClient(config.temporal);
  const jobs = new JobService(client, config);
  try {
    // A first job loads everything a job needs (workflow bundle, runtime source) before "idle" is taken.
    assert.equal((await jobs.execute({ code: 'async () => 1', waitSeconds: 60 })).result, 1);
    const settle = async () => {
      global.gc?.();
      await new Promise((r) => setTimeout(r, 2_000));
      return process.memoryUsage().rss;
    };
    const idle = await settle();
    let peak = idle;
    let peakSessions = 0;
    const sampler = setInterval(() => {
      peak = Math.max(peak, process.memoryUsage().rss);
      peakSessions = Math.max(peakSessions, worker.sessions.size);
    }, 20);
    // Small jobs that stay live for a while: a few rounds each, holding their sandbox between them.
    const code = `async () => { const rows = []; for (let r = 0; r < 5; r++) { rows.push(await step('r' + r, () => Array.from({ length: 100 }, (_, i) => i * r))); await sleep(200); } return rows.flat().length + input; }`;
    const started = performance.now();
    const views = await Promise.all(
      Array.from({ length: JOBS }, (_, i) => jobs.execute({ code, input: i, waitSeconds: 60 })),
    );
    const wallMs = performance.now() - started;
    clearInterval(sampler);
    views.forEach((v, i) => assert.equal(v.result, 500 + i, JSON.stringify(v)));
    const after = await settle();
    return {
      idleRss: idle,
      peakRss: peak,
      afterRss: after,
      peakSessions,
      peakRunning: worker.sessions.peakRunning,
      wallMs,
    };
  } finally {
    await worker.shutdown();
    await connection.close();
    await client.connection.close();
    await env.teardown();
    await rm(dataDir, { recursive: true, force: true });
  }
}

log(`tight loop of ${LOOP_ITERATIONS} iterations, ${LOOP_RUNS} runs each way...`);
const cpu = await cpuBoundRounds();
log(`worker memory: idle, then ${JOBS} concurrent jobs...`);
const memory = await workerMemory();

const overheadPct = ((cpu.loopBoundedMs - cpu.loopUnboundedMs) / cpu.loopUnboundedMs) * 100;
console.log(`
| measure | value |
|---|---:|
| tight loop, round with timeout (median of ${LOOP_RUNS}) | ${cpu.loopBoundedMs.toFixed(1)} ms |
| tight loop, unbounded (median of ${LOOP_RUNS}) | ${cpu.loopUnboundedMs.toFixed(1)} ms |
| overhead of the CPU limit on a CPU-bound round | ${overheadPct.toFixed(1)} % |
| trivial call with timeout / without | ${cpu.callBoundedUs.toFixed(0)} µs / ${cpu.callUnboundedUs.toFixed(0)} µs |
| worker RSS idle | ${mib(memory.idleRss)} MiB |
| worker RSS peak, ${JOBS} concurrent jobs (${memory.peakSessions} live sandboxes at most) | ${mib(memory.peakRss)} MiB |
| per live job | ${mib((memory.peakRss - memory.idleRss) / Math.max(1, memory.peakSessions))} MiB |
| worker RSS after, settled | ${mib(memory.afterRss)} MiB |
| ${JOBS} jobs wall time | ${(memory.wallMs / 1000).toFixed(1)} s |
`);
console.log(
  `BENCH_JSON ${JSON.stringify({ cpu, memory: { ...memory, idleMiB: mib(memory.idleRss), peakMiB: mib(memory.peakRss) } })}`,
);
process.exit(0);
