/**
 * How lean the long-running processes are. `npm run bench:worker-start`:
 * - `durable-codemode worker` (the demo providers): time and CPU time from spawn to polling, RSS once
 *   polling and after 5 s idle;
 * - `durable-codemode serve --http` with one small spec (the demo CRM): CPU time until it serves, and
 *   RSS after 10 s idle.
 *
 * DCM_BENCH_CLIS="ts=cli/main.ts,js=dist/js/cli/main.js" compares entry points (the TypeScript
 * sources and the compiled CLI of `npm run build`, or other checkouts) side by side in one run (runs
 * interleaved; one warm-up run each, not counted, builds and caches what a first start builds). The
 * default is both of this checkout's when dist/js is up to date, else the sources only. Runs
 * against its own in-memory Temporal dev server, or DCM_BENCH_TEMPORAL_ADDRESS.
 */
import { mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { COMPILED_ENTRY, compiledUpToDate } from '../cli/compile.ts';
import { CRM_SPEC_PATH } from '../demo-apis/crm.ts';
import { startDevServer } from '../temporal/dev-server.ts';
import { spawnCli, type WorkerProcess } from './worker-process.ts';

const RUNS = Number(process.env.DCM_BENCH_RUNS ?? 5);
const WORKER_IDLE_MS = 5_000;
const SERVE_IDLE_MS = 10_000;
const SOURCES_ENTRY = fileURLToPath(new URL('../cli/main.ts', import.meta.url));
const CLIS = (process.env.DCM_BENCH_CLIS ?? `ts=${SOURCES_ENTRY}${compiledUpToDate() ? `,js=${COMPILED_ENTRY}` : ''}`)
  .split(',')
  .map((pair) => {
    const [name, path] = pair.split('=');
    return { name, cli: resolve(path) };
  });

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
/** Megabytes of 10^6 bytes, as issue 10's and 12's targets (120 MB, 200 MB) are read. */
const mb = (bytes: number) => Math.round(bytes / 1e6);

interface Samples {
  startMs: number[];
  /** CPU time the worker used until it polled: what start-up costs, whatever else loads the machine. */
  startCpuS: number[];
  pollingRss: number[];
  idleRss: number[];
  serveCpuS: number[];
  serveIdleRss: number[];
}

async function main(): Promise<void> {
  const server = process.env.DCM_BENCH_TEMPORAL_ADDRESS ? undefined : await startDevServer({});
  const address = process.env.DCM_BENCH_TEMPORAL_ADDRESS ?? server!.address;
  // No providers configured: the worker takes the bundled demo APIs' specs, as `dev` does.
  const dir = mkdtempSync(join(tmpdir(), 'dcm-bench-worker-'));
  const workerConfig = join(dir, 'worker.json');
  writeFileSync(workerConfig, JSON.stringify({ dataDir: dir }));
  const serveDir = join(dir, 'serve');
  mkdirSync(serveDir);
  const serveConfig = join(dir, 'serve.json');
  writeFileSync(
    serveConfig,
    JSON.stringify({
      dataDir: serveDir,
      providers: { crm: { openapi: CRM_SPEC_PATH, baseUrl: 'http://127.0.0.1:9' } },
    }),
  );
  const env = { TEMPORAL_ADDRESS: address };
  const spawnWorker = (cli: string) => spawnCli(['worker', '--config', workerConfig], 'worker polling', env, cli);
  const spawnServe = (cli: string) =>
    spawnCli(['serve', '--http', '--port', '0', '--config', serveConfig], 'durable-codemode MCP server at', env, cli);
  const samples = new Map<string, Samples>(
    CLIS.map(({ name }) => [
      name,
      { startMs: [], startCpuS: [], pollingRss: [], idleRss: [], serveCpuS: [], serveIdleRss: [] },
    ]),
  );
  const idle = async (process: WorkerProcess, ms: number) => {
    await new Promise((r) => setTimeout(r, ms));
    const rss = process.rss();
    await process.kill('SIGTERM');
    return rss;
  };
  try {
    for (const { cli } of CLIS) {
      await (await spawnWorker(cli)).kill('SIGTERM');
      await (await spawnServe(cli)).kill('SIGTERM');
    }
    for (let i = 0; i < RUNS; i++) {
      for (const { name, cli } of CLIS) {
        const s = samples.get(name)!;
        const worker = await spawnWorker(cli);
        s.startMs.push(worker.pollingAt - worker.spawnedAt);
        s.startCpuS.push(worker.cpuSeconds());
        s.pollingRss.push(worker.memory().startRss);
        s.idleRss.push(await idle(worker, WORKER_IDLE_MS));
        const serve = await spawnServe(cli);
        s.serveCpuS.push(serve.cpuSeconds());
        s.serveIdleRss.push(await idle(serve, SERVE_IDLE_MS));
      }
    }
  } finally {
    await server?.teardown();
  }
  const figures = Object.fromEntries(
    [...samples].map(([name, s]) => [
      name,
      {
        startToPollingMs: { median: Math.round(median(s.startMs)), all: s.startMs.map(Math.round) },
        cpuToPollingS: { median: median(s.startCpuS), all: s.startCpuS },
        rssAtPollingMb: { median: mb(median(s.pollingRss)), all: s.pollingRss.map(mb) },
        rssIdleMb: { median: mb(median(s.idleRss)), all: s.idleRss.map(mb) },
        serveCpuToReadyS: { median: median(s.serveCpuS), all: s.serveCpuS },
        serveRssIdleMb: { median: mb(median(s.serveIdleRss)), all: s.serveIdleRss.map(mb) },
      },
    ]),
  );
  for (const [name, f] of Object.entries(figures))
    console.log(
      `${name}: worker start to polling ${f.startToPollingMs.median} ms, ${f.cpuToPollingS.median.toFixed(2)} s of CPU; RSS ${f.rssAtPollingMb.median} MB polling, ${f.rssIdleMb.median} MB after ${WORKER_IDLE_MS / 1000} s idle. serve (demo CRM spec): ${f.serveCpuToReadyS.median.toFixed(2)} s of CPU to serving, RSS ${f.serveRssIdleMb.median} MB after ${SERVE_IDLE_MS / 1000} s idle (medians of ${RUNS}; MB = 10^6 bytes)`,
    );
  console.log(
    `BENCH_JSON ${JSON.stringify({ runs: RUNS, workerIdleMs: WORKER_IDLE_MS, serveIdleMs: SERVE_IDLE_MS, figures })}`,
  );
}

await main();
