/**
 * `npm run bench:ledger-import [-- REPEATS]`: the 100,000-row lead import of issue 15 written two
 * ways, run side by side (interleaved, REPEATS times each, default 2) against one Temporal dev
 * server and the same demo APIs:
 * 1. with each() (demo-apis/lead-import.ts `ledgerImportScript`): a ledger item per row, rows
 *    queued into batches of 100, one batch per round;
 * 2. with the README's checkpoint pattern (`checkpointImportScript`): a loop over batches of 100, a
 *    checkpoint after each with the next position and the refused rows' indexes.
 * Both send `POST /leads/batch?partial=true` to the same CRM. Faults: 1% of the sheet's rows have a
 * malformed email (the CRM refuses them with 422, the others are created); no 503s, no latency, no
 * killed worker, so the figures are the import's own cost.
 *
 * Each run gets a fresh worker process. Measured: wall time (execute → completed), the worker's
 * peak RSS (VmHWM), the job's runs and history events per run, and for each(): ledger bytes per
 * item (the gzip segments its index refers to) and the time to page through the 1,000 failures
 * (50 pages of 20, as the job tool's `failures` answers them). Every run must leave exactly the
 * 99,000 good rows in the CRM, once each. Prints a table and a `BENCH_JSON {...}` line.
 */
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { availableParallelism, cpus, tmpdir } from 'node:os';
import { join } from 'node:path';
import { DefaultLogger, Runtime } from '@temporalio/worker';
import { createBlobStore } from '../blobs/index.ts';
import { parseConfig } from '../cli/config.ts';
import { demoProvidersConfig, startCrmApi, startSheetsApi } from '../demo-apis/index.ts';
import { checkpointImportScript, ledgerImportScript } from '../demo-apis/lead-import.ts';
import { FAILURES_PER_PAGE, JobService, type JobView } from '../jobs/service.ts';
import { LedgerStore } from '../ledger/store.ts';
import { connectClient } from '../temporal/connection.ts';
import { startDevServer } from '../temporal/dev-server.ts';
import { runsOf } from './histories.ts';
import { spawnWorker, type WorkerProcess } from './worker-process.ts';

// The dev server's client logs at INFO would bury the table.
Runtime.install({ logger: new DefaultLogger('WARN') });

const ROWS = 100_000;
const SHEET = 'leads';
/** 1% of the rows, spread over the sheet and the positions in a batch (as test/integration/ledger-import.test.ts). */
const BAD = Array.from({ length: ROWS / 100 }, (_, k) => k * 100 + ((k * 37) % 100));
const REPEATS = Number(process.argv[2] ?? 2);
const MEMORY_MB = 512;

const VARIANTS = [
  {
    name: 'each()',
    code: ledgerImportScript(SHEET),
    result: { done: 99_000, failed: 1_000, uncertain: 0, skipped: 0 },
  },
  { name: 'checkpoint', code: checkpointImportScript(SHEET), result: { created: 99_000, failed: 1_000 } },
] as const;
type Variant = (typeof VARIANTS)[number]['name'];

interface Run {
  variant: Variant;
  wallMs: number;
  peakRssMb: number;
  /** The worker's peak before the job (bundling the workflow code peaks on its own). */
  startPeakRssMb: number;
  rounds: number;
  eventsPerRun: number[];
  historyKiB: number[];
  ledgerBytesPerItem?: number;
  pageFailuresMs?: number;
}

const log = (line: string) => console.error(`[bench] ${line}`);
const mb = (bytes: number) => Math.round(bytes / 1024 / 1024);
const seconds = (ms: number) => (ms / 1000).toFixed(1);
const sum = (values: number[]) => values.reduce((a, b) => a + b, 0);

async function main(): Promise<void> {
  const cleanup: Array<() => Promise<unknown>> = [];
  const workers = new Set<WorkerProcess>();
  try {
    log('starting Temporal dev server and demo APIs');
    const env = await startDevServer({});
    cleanup.unshift(() => env.teardown());
    const crm = await startCrmApi();
    cleanup.unshift(() => crm.close());
    const sheets = await startSheetsApi({ sheets: { [SHEET]: ROWS }, malformedRows: { [SHEET]: BAD } });
    cleanup.unshift(() => sheets.close());
    const dataDir = await mkdtemp(join(tmpdir(), 'dcm-bench-ledger-import-'));
    cleanup.unshift(() => rm(dataDir, { recursive: true, force: true }));
    const config = parseConfig(
      {
        providers: demoProvidersConfig({ crm, sheets }),
        temporal: { taskQueue: `bench-ledger-import-${randomUUID().slice(0, 8)}` },
        dataDir,
        limits: { memoryMb: MEMORY_MB },
      },
      undefined,
      { TEMPORAL_ADDRESS: env.address },
    );
    const configFile = join(dataDir, 'config.json');
    await writeFile(configFile, JSON.stringify(config));
    const client = await connectClient(config.temporal);
    cleanup.unshift(() => client.connection.close());
    const jobs = new JobService(client, config);
    const ledgers = new LedgerStore(createBlobStore(config.blobs, dataDir));

    const runOnce = async (variant: (typeof VARIANTS)[number]): Promise<Run> => {
      crm.reset();
      const worker = await spawnWorker(configFile, env.address);
      workers.add(worker);
      const start = performance.now();
      let view: JobView = await jobs.execute({ code: variant.code, waitSeconds: 0 });
      while (view.status === 'running') view = await jobs.status(view.job_id, 40);
      const wallMs = performance.now() - start;
      const memory = worker.memory();
      await worker.kill('SIGTERM');
      workers.delete(worker);
      assert.equal(view.status, 'completed', `${variant.name}: ${JSON.stringify(view.error)}`);
      assert.deepEqual(
        view.result,
        variant.name === 'each()' ? { ...variant.result, ledger: 'items' } : variant.result,
      );
      const { leads, duplicateEmails } = crm.stats();
      assert.deepEqual({ leads, duplicateEmails }, { leads: ROWS - BAD.length, duplicateEmails: 0 }, variant.name);
      const runs = await runsOf(client, view, SHEET, ROWS);
      const run: Run = {
        variant: variant.name,
        wallMs,
        peakRssMb: mb(memory.peakRss),
        startPeakRssMb: mb(memory.startPeakRss),
        rounds: view.rounds!,
        eventsPerRun: runs.map((r) => r.events.length),
        historyKiB: runs.map((r) => Math.round(r.temporalBytes / 1024)),
      };
      if (variant.name === 'each()') {
        const index = (await ledgers.index(view.job_id, 1))!;
        const segments = [...index.segments, ...(index.tail ? [index.tail] : [])];
        assert.equal(sum(segments.map((s) => s.entries)), ROWS);
        run.ledgerBytesPerItem = sum(segments.map((s) => s.ref.bytes)) / ROWS;
        const pagingStart = performance.now();
        let paged = 0;
        for (let page = 1; page <= BAD.length / FAILURES_PER_PAGE; page++)
          paged += (await jobs.failures(view.job_id, page)).failures.length;
        run.pageFailuresMs = performance.now() - pagingStart;
        assert.equal(paged, BAD.length);
      }
      log(`${variant.name}: ${seconds(wallMs)} s, worker peak RSS ${run.peakRssMb} MB, ${runs.length} runs`);
      return run;
    };

    const results: Run[] = [];
    for (let rep = 0; rep < REPEATS; rep++) {
      // Alternate which goes first, so a machine getting busier or quieter favours neither.
      for (const variant of rep % 2 === 0 ? VARIANTS : [...VARIANTS].reverse()) {
        log(`${ROWS} rows with ${variant.name} (${rep + 1} of ${REPEATS})`);
        results.push(await runOnce(variant));
      }
    }

    const of = (variant: Variant) => results.filter((r) => r.variant === variant);
    const ratio = sum(of('each()').map((r) => r.wallMs)) / sum(of('checkpoint').map((r) => r.wallMs));
    console.log(
      `\ndurable-codemode ledger import bench — ${new Date().toISOString().slice(0, 10)}, ${availableParallelism()} CPUs (${cpus()[0]?.model ?? 'unknown'}), Node ${process.version}`,
    );
    console.log(
      `${ROWS.toLocaleString('en')} rows in batches of 100 (POST /leads/batch?partial=true), 1% refused with 422, no 503s; worker limits.memoryMb ${MEMORY_MB}, maxEventsPerRun ${config.maxEventsPerRun}; ${REPEATS} interleaved runs each\n`,
    );
    console.log(
      '| import | wall (each run) | mean | worker peak RSS | rounds | runs | events per run | history per run | ledger bytes/item | page 1,000 failures |',
    );
    console.log('|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|');
    for (const { name } of VARIANTS) {
      const runs = of(name);
      const last = runs.at(-1)!;
      const ledger = last.ledgerBytesPerItem === undefined;
      console.log(
        `| ${name} | ${runs.map((r) => `${seconds(r.wallMs)} s`).join(' / ')} | ${seconds(sum(runs.map((r) => r.wallMs)) / runs.length)} s | ${runs.map((r) => `${r.peakRssMb} MB`).join(' / ')} | ${last.rounds} | ${last.eventsPerRun.length} | ${last.eventsPerRun.join(' / ')} | ${last.historyKiB.map((k) => `${k} KiB`).join(' / ')} | ${ledger ? '' : last.ledgerBytesPerItem!.toFixed(1)} | ${ledger ? '' : runs.map((r) => `${Math.round(r.pageFailuresMs!)} ms`).join(' / ')} |`,
      );
    }
    console.log(`\neach() / checkpoint wall time: ×${ratio.toFixed(2)} (sum over the runs)`);
    const json = {
      date: new Date().toISOString(),
      node: process.version,
      cpus: availableParallelism(),
      rows: ROWS,
      refused: BAD.length,
      repeats: REPEATS,
      maxEventsPerRun: config.maxEventsPerRun,
      ratio: Math.round(ratio * 100) / 100,
      runs: results.map((r) => ({
        ...r,
        wallMs: Math.round(r.wallMs),
        ...(r.pageFailuresMs === undefined ? {} : { pageFailuresMs: Math.round(r.pageFailuresMs) }),
        ...(r.ledgerBytesPerItem === undefined
          ? {}
          : { ledgerBytesPerItem: Math.round(r.ledgerBytesPerItem * 10) / 10 }),
      })),
    };
    console.log(`\nBENCH_JSON ${JSON.stringify(json)}`);
  } finally {
    log('shutting down');
    await Promise.all([...workers].map((w) => w.kill('SIGTERM')));
    for (const step of cleanup) await step();
  }
}

await main();
