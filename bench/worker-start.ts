/**
 * How lean a `durable-codemode worker` process is: time from spawn to polling, RSS once polling and
 * after a few idle seconds, and which heavy modules it loaded (the MCP server, the search sandbox,
 * the tokenizer, the demo APIs, test utilities must not be among them). `npm run bench:worker-start`.
 *
 * Runs against its own in-memory Temporal dev server, or DCM_BENCH_TEMPORAL_ADDRESS.
 */
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startDevServer } from '../temporal/dev-server.ts';
import { spawnWorker } from './worker-process.ts';

const RUNS = Number(process.env.DCM_BENCH_RUNS ?? 5);
const IDLE_MS = 5_000;

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
const mb = (bytes: number) => Math.round(bytes / 1024 / 1024);

async function main(): Promise<void> {
  const server = process.env.DCM_BENCH_TEMPORAL_ADDRESS ? undefined : await startDevServer({});
  const address = process.env.DCM_BENCH_TEMPORAL_ADDRESS ?? server!.address;
  // No providers configured: the worker takes the bundled demo APIs' specs, as `dev` does.
  const dir = mkdtempSync(join(tmpdir(), 'dcm-bench-worker-'));
  const configFile = join(dir, 'config.json');
  writeFileSync(configFile, JSON.stringify({ dataDir: dir }));
  const startMs: number[] = [];
  const pollingRss: number[] = [];
  const idleRss: number[] = [];
  try {
    for (let i = 0; i < RUNS; i++) {
      const worker = await spawnWorker(configFile, address);
      startMs.push(worker.pollingAt - worker.spawnedAt);
      pollingRss.push(worker.memory().startRss);
      await new Promise((r) => setTimeout(r, IDLE_MS));
      idleRss.push(worker.rss());
      await worker.kill('SIGTERM');
    }
  } finally {
    await server?.teardown();
  }
  const figures = {
    runs: RUNS,
    startToPollingMs: { median: Math.round(median(startMs)), all: startMs.map(Math.round) },
    rssAtPollingMb: { median: mb(median(pollingRss)), all: pollingRss.map(mb) },
    rssIdleMb: { median: mb(median(idleRss)), all: idleRss.map(mb), afterMs: IDLE_MS },
  };
  console.log(
    `worker start to polling: ${figures.startToPollingMs.median} ms median of ${RUNS}; RSS ${figures.rssAtPollingMb.median} MB polling, ${figures.rssIdleMb.median} MB after ${IDLE_MS / 1000} s idle`,
  );
  console.log(`BENCH_JSON ${JSON.stringify(figures)}`);
}

await main();
