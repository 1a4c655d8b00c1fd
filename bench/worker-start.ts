/**
 * How lean a `durable-codemode worker` process is: time and CPU time from spawn to polling, and RSS
 * once polling and after a few idle seconds. `npm run bench:worker-start`.
 *
 * DCM_BENCH_CLIS="before=/other/checkout/cli/main.ts,after=cli/main.ts" compares checkouts side by
 * side in one run (runs interleaved; one warm-up run each, not counted, builds and caches what a
 * first start builds). Runs against its own in-memory Temporal dev server, or DCM_BENCH_TEMPORAL_ADDRESS.
 */
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { startDevServer } from '../temporal/dev-server.ts';
import { spawnCli } from './worker-process.ts';

const RUNS = Number(process.env.DCM_BENCH_RUNS ?? 5);
const IDLE_MS = 5_000;
const CLIS = (process.env.DCM_BENCH_CLIS ?? `this=${fileURLToPath(new URL('../cli/main.ts', import.meta.url))}`)
  .split(',')
  .map((pair) => {
    const [name, path] = pair.split('=');
    return { name, cli: resolve(path) };
  });

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
const mb = (bytes: number) => Math.round(bytes / 1024 / 1024);

interface Samples {
  startMs: number[];
  /** CPU time the worker used until it polled: what start-up costs, whatever else loads the machine. */
  startCpuS: number[];
  pollingRss: number[];
  idleRss: number[];
}

async function main(): Promise<void> {
  const server = process.env.DCM_BENCH_TEMPORAL_ADDRESS ? undefined : await startDevServer({});
  const address = process.env.DCM_BENCH_TEMPORAL_ADDRESS ?? server!.address;
  // No providers configured: the worker takes the bundled demo APIs' specs, as `dev` does.
  const dir = mkdtempSync(join(tmpdir(), 'dcm-bench-worker-'));
  const configFile = join(dir, 'config.json');
  writeFileSync(configFile, JSON.stringify({ dataDir: dir }));
  const spawnWorker = (cli: string) =>
    spawnCli(['worker', '--config', configFile], 'worker polling', { TEMPORAL_ADDRESS: address }, cli);
  const samples = new Map<string, Samples>(
    CLIS.map(({ name }) => [name, { startMs: [], startCpuS: [], pollingRss: [], idleRss: [] }]),
  );
  try {
    for (const { cli } of CLIS) await (await spawnWorker(cli)).kill('SIGTERM');
    for (let i = 0; i < RUNS; i++) {
      for (const { name, cli } of CLIS) {
        const worker = await spawnWorker(cli);
        const s = samples.get(name)!;
        s.startMs.push(worker.pollingAt - worker.spawnedAt);
        s.startCpuS.push(worker.cpuSeconds());
        s.pollingRss.push(worker.memory().startRss);
        await new Promise((r) => setTimeout(r, IDLE_MS));
        s.idleRss.push(worker.rss());
        await worker.kill('SIGTERM');
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
      },
    ]),
  );
  for (const [name, f] of Object.entries(figures))
    console.log(
      `${name}: worker start to polling ${f.startToPollingMs.median} ms, ${f.cpuToPollingS.median.toFixed(2)} s of CPU (medians of ${RUNS}); RSS ${f.rssAtPollingMb.median} MB polling, ${f.rssIdleMb.median} MB after ${IDLE_MS / 1000} s idle`,
    );
  console.log(`BENCH_JSON ${JSON.stringify({ runs: RUNS, idleMs: IDLE_MS, figures })}`);
}

await main();
