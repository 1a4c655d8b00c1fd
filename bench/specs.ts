/**
 * `npm run bench:specs`: real API specs, side by side in one run (Cloudflare, Stripe, GitHub,
 * Kubernetes (Swagger 2.0), Microsoft Graph beta), and what an idle MCP server costs.
 *
 * In this process, per spec: load time cold (read, parse, reduce) and cached (the record read from
 * the blob store), the bytes given to the search sandbox, its heap once warm, and search latency
 * (median and p95) for `spec.operations.length`, for a search that walks schemas (every request
 * body's properties, through named schemas, three levels deep), and for a full-text search
 * (`JSON.stringify(op)` of every operation).
 *
 * As processes, per spec: `durable-codemode serve --http` with that one provider, from a fresh data
 * dir (cold) and again (cached): time until it serves and its peak RSS; then a worker on the same
 * data dir: peak RSS when it polls. And `serve` with the small demo CRM spec: RSS after 10 s idle
 * (also for another checkout's CLI given as BENCH_BASELINE=/path/to/checkout, for a before/after).
 *
 * Starts its own Temporal dev server (in memory). Real specs are fetched from npm on first use.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { LocalBlobStore } from '../blobs/local-store.ts';
import { CRM_SPEC_PATH } from '../demo-apis/crm.ts';
import { loadSpec, type LoadedSpec } from '../providers/spec.ts';
import { SpecSearch } from '../sandbox/search.ts';
import { startDevServer } from '../temporal/dev-server.ts';
import { CLOUDFLARE_SPEC } from '../test/fixtures/cloudflare.ts';
import { realSpec } from '../test/fixtures/real-specs.ts';
import { spawnCli, spawnWorker, type WorkerProcess } from './worker-process.ts';

const SPECS: Array<[string, () => string]> = [
  ['Cloudflare', () => CLOUDFLARE_SPEC],
  ['Stripe', () => realSpec('stripe')],
  ['GitHub', () => realSpec('github')],
  ['Kubernetes', () => realSpec('kubernetesSwagger')],
  ['Graph beta', () => realSpec('graphBeta')],
];
/** Runs of each search (after one warm-up). */
const SEARCH_RUNS = { count: 30, walk: 10, text: 10 };
const IDLE_MS = 10_000;
const SERVING = 'durable-codemode MCP server at';

const SEARCHES = {
  count: 'async () => spec.operations.length',
  walk: `async () => {
    const names = new Set();
    const walk = (schema, depth) => {
      if (!schema || typeof schema !== 'object' || depth > 3) return;
      for (const [name, s] of Object.entries(schema.properties ?? {})) { names.add(name); walk(s, depth + 1); }
      walk(schema.items, depth + 1);
      for (const s of schema.allOf ?? []) walk(s, depth + 1);
    };
    for (const op of spec.operations) walk(op.requestBody?.schema, 0);
    return names.size;
  }`,
  text: `async () => spec.operations.filter((o) => JSON.stringify(o).includes('"email"')).length`,
};

const mb = (bytes: number) => (bytes / 1e6).toFixed(1);
const format = (n: number) => Math.round(n).toLocaleString('en-US');

function percentile(sorted: number[], p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor(p * sorted.length))];
}

async function time<T>(run: () => Promise<T>): Promise<{ value: T; ms: number }> {
  const started = performance.now();
  const value = await run();
  return { value, ms: performance.now() - started };
}

/** Median and p95 of a search; undefined when it hits the search time limit (5 s). */
async function searchTimes(search: SpecSearch, kind: keyof typeof SEARCHES) {
  const run = () => search.run(SEARCHES[kind]);
  try {
    await run(); // warm-up
  } catch (e) {
    if ((e as Error).name === 'TimeLimitError') return undefined;
    throw e;
  }
  const times: number[] = [];
  for (let i = 0; i < SEARCH_RUNS[kind]; i++) times.push((await time(run)).ms);
  times.sort((a, b) => a - b);
  return { median: percentile(times, 0.5), p95: percentile(times, 0.95) };
}

/** In this process: loading (cold, cached), the search sandbox, search latency. */
async function inProcess(name: string, file: string, work: string) {
  const cache = new LocalBlobStore(join(work, 'blobs'));
  const cold = await time(() => loadSpec(name, file, { cache }));
  const cached = await time(() => loadSpec(name, file, { cache }));
  const spec: LoadedSpec = cached.value;
  if (spec.error) throw new Error(spec.error);
  if (!cached.value.cached) throw new Error(`${name}: the second load did not read the cache`);
  const created = await time(() => SpecSearch.create([spec]));
  const search = created.value;
  try {
    const operations = (await search.run(SEARCHES.count)) as number;
    const latency = {
      count: await searchTimes(search, 'count'),
      walk: await searchTimes(search, 'walk'),
      text: await searchTimes(search, 'text'),
    };
    return {
      operations,
      coldMs: cold.ms,
      cachedMs: cached.ms,
      sandboxBytes: spec.json!.length,
      sandboxStartMs: created.ms,
      heapBytes: await search.heapBytes(),
      latency,
    };
  } finally {
    search.dispose();
  }
}

function writeConfig(work: string, providers: Record<string, unknown>): string {
  const file = join(work, 'config.json');
  writeFileSync(file, JSON.stringify({ providers, dataDir: join(work, 'data') }));
  return file;
}

async function serve(configFile: string, address: string, cli?: string): Promise<WorkerProcess> {
  return spawnCli(
    ['serve', '--http', '--port', '0', '--config', configFile],
    SERVING,
    { TEMPORAL_ADDRESS: address },
    cli,
  );
}

/** As processes: `serve` cold and cached, then a worker, each with this one provider. */
async function asProcesses(file: string, work: string, address: string) {
  const configFile = writeConfig(work, { api: { openapi: file, baseUrl: 'https://api.example.com' } });
  const results = [];
  for (const run of ['cold', 'cached']) {
    const server = await serve(configFile, address);
    results.push({ run, readyMs: server.pollingAt - server.spawnedAt, peakRss: server.memory().peakRss });
    await server.kill('SIGTERM');
  }
  const worker = await spawnWorker(configFile, address);
  const workerPeakRss = worker.memory().peakRss;
  await worker.kill('SIGTERM');
  return { serveCold: results[0], serveCached: results[1], workerPeakRss };
}

async function idleRss(address: string, cli?: string): Promise<number> {
  const work = mkdtempSync(join(tmpdir(), 'dcm-bench-idle-'));
  try {
    const configFile = writeConfig(work, { crm: { openapi: CRM_SPEC_PATH, baseUrl: 'http://127.0.0.1:9' } });
    const server = await serve(configFile, address, cli);
    await new Promise((resolve) => setTimeout(resolve, IDLE_MS));
    const rss = server.rss();
    await server.kill('SIGTERM');
    return rss;
  } finally {
    rmSync(work, { recursive: true, force: true });
  }
}

async function main() {
  const files = SPECS.map(([name, path]) => [name, path()] as const);
  const env = await startDevServer({});
  const { address } = env;
  const rows = [];
  try {
    for (const [name, file] of files) {
      const work = mkdtempSync(join(tmpdir(), 'dcm-bench-specs-'));
      try {
        const local = await inProcess(name, file, work);
        const processes = await asProcesses(file, mkdtempSync(join(work, 'p-')), address);
        rows.push({ name, ...local, ...processes });
        console.error(`${name}: done`);
      } finally {
        rmSync(work, { recursive: true, force: true });
      }
    }
    const idle = await idleRss(address);
    const baselineCli = process.env.BENCH_BASELINE ? join(process.env.BENCH_BASELINE, 'cli/main.ts') : undefined;
    const baselineIdle = baselineCli ? await idleRss(address, baselineCli) : undefined;

    console.log('\nLoading and searching (in this process)\n');
    console.log(
      '| spec | operations | load cold | load cached | JSON to the sandbox | sandbox start | sandbox heap | `operations.length` median / p95 | schema walk median / p95 | full text median / p95 |',
    );
    console.log('|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|');
    const ms = (t: { median: number; p95: number } | undefined, digits = 0) =>
      t ? `${t.median.toFixed(digits)} / ${t.p95.toFixed(digits)} ms` : 'over the 5 s limit';
    for (const r of rows) {
      const l = r.latency;
      console.log(
        `| ${r.name} | ${format(r.operations)} | ${format(r.coldMs)} ms | ${format(r.cachedMs)} ms | ${mb(r.sandboxBytes)} MB | ${format(r.sandboxStartMs)} ms | ${mb(r.heapBytes)} MB | ${ms(l.count, 2)} | ${ms(l.walk)} | ${ms(l.text)} |`,
      );
    }
    console.log('\nProcesses (one provider each)\n');
    console.log('| spec | `serve` ready, cold | peak RSS | `serve` ready, cached | peak RSS | worker peak RSS |');
    console.log('|---|---:|---:|---:|---:|---:|');
    for (const r of rows) {
      console.log(
        `| ${r.name} | ${format(r.serveCold.readyMs)} ms | ${mb(r.serveCold.peakRss)} MB | ${format(r.serveCached.readyMs)} ms | ${mb(r.serveCached.peakRss)} MB | ${mb(r.workerPeakRss)} MB |`,
      );
    }
    console.log(
      `\nIdle MCP server (serve --http, demo CRM spec, ${IDLE_MS / 1000} s): ${mb(idle)} MB RSS${baselineIdle === undefined ? '' : `; ${process.env.BENCH_BASELINE}: ${mb(baselineIdle)} MB`}`,
    );
    console.log(`BENCH_SPECS_JSON ${JSON.stringify({ rows, idleRss: idle, baselineIdleRss: baselineIdle })}`);
  } finally {
    await env.teardown();
  }
}

await main();
