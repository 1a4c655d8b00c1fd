/**
 * `npm run bench:long`: the lead import of issue 3 at 10,000 and 100,000 rows, on this machine, with a
 * CRM answering at once and, for 100,000 rows, also with a CRM taking 50 ms per request.
 *
 * The script is demo-apis/lead-import.ts (as test/long-jobs.test.ts runs it): GET the sheet's CSV, parse it once as a step,
 * POST batches of 100 rows with progress. For each case it runs
 * 1. durably, on a worker that is a separate process (`durable-codemode worker`, started fresh for
 *    the run): wall time, the worker's peak RSS (the kernel's VmHWM at the end; VmRSS is also
 *    sampled every 200 ms), and the job's workflow runs with their history events and size;
 * 2. directly (bench/direct.ts: the worker's work minus Temporal) in this process, three times
 *    (the median counts), for the durable/direct ratio; and on the floor of the architecture (a
 *    workflow making each batch call as one activity: bench/baseline-workflow.ts, worker in this
 *    process), for the durable/floor ratio.
 * 3. Then durably at 10,000 rows again, five times, with the worker SIGKILLed once 40% of the rows
 *    are in (plus a random delay under 150 ms) and a new worker started at once: the time from the
 *    kill until the new worker polls, and until the CRM gets its next new lead, and the wall time
 *    the kill cost. The first new lead may come from a call already scheduled while the job still
 *    waits to reach its sandbox; Temporal's timeouts in the history show what the job waited out.
 *
 * Every run must leave exactly N leads and no duplicate email in the CRM. Everything runs against
 * its own in-memory Temporal dev server and demo APIs (no failure injection).
 */
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { availableParallelism, cpus, tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { setTimeout as delay } from 'node:timers/promises';
import type { Client } from '@temporalio/client';
import { bundleWorkflowCode, DefaultLogger, Runtime, Worker } from '@temporalio/worker';
import { demoProvidersConfig, startCrmApi, startSheetsApi } from '../demo-apis/index.ts';
import { sheetRow } from '../demo-apis/sheets.ts';
import { parseConfig } from '../cli/config.ts';
import { HttpProviderConfig } from '../providers/config.ts';
import { JobService, type JobView } from '../jobs/service.ts';
import { performRequest } from '../providers/http-client.ts';
import { connectClient, connectWorker } from '../temporal/connection.ts';
import { findTemporalCli, startDevServer } from '../temporal/dev-server.ts';
import { leadImportScript } from '../demo-apis/lead-import.ts';
import type { BaselineActivities, importBaseline } from './baseline-workflow.ts';
import { runDirect } from './direct.ts';
import { timeoutsSince } from './fault-report.ts';
import { runsOf } from './histories.ts';
import { spawnWorker, type WorkerProcess } from './worker-process.ts';

// The dev server's client logs at INFO would bury the table.
Runtime.install({ logger: new DefaultLogger('WARN') });

/** Rows to import and the CRM's latency per request: at 0 ms the ratio shows the whole overhead of a round. */
const CASES = [
  { rows: 10_000, latencyMs: 0 },
  { rows: 100_000, latencyMs: 0 },
  { rows: 100_000, latencyMs: 50 },
];
const SIZES = [...new Set(CASES.map((c) => c.rows))];
/** One of CASES at 0 ms, so its uninterrupted run is the reference for what a kill costs. */
const RESTART_ROWS = 10_000;
const RESTARTS = 5;
/** The worker is killed once this share of the rows is in the CRM, plus a random delay of up to a few rounds. */
const KILL_AT = 0.4;
const KILL_JITTER_MS = 150;
/** Direct runs are short and vary more: the median of this many counts. */
const DIRECT_REPEATS = 3;
const MEMORY_MB = 512;
/** Rows per POST /leads/batch, as demo-apis/lead-import.ts sends them. */
const BATCH = 100;
const BASELINE_WORKFLOWS_PATH = fileURLToPath(new URL('./baseline-workflow.ts', import.meta.url));
/** Requests the killed worker had sent land within this; leads after it are the new worker's. */
const IN_FLIGHT_SETTLE_MS = 200;

const sheetOf = (rows: number) => `leads-${rows}`;
const log = (line: string) => console.error(`[bench] ${line}`);
const mb = (bytes: number) => Math.round(bytes / 1024 / 1024);
const seconds = (ms: number) => (ms / 1000).toFixed(1);
const median = (samples: number[]) => [...samples].sort((a, b) => a - b)[Math.floor(samples.length / 2)];

interface Restart {
  leadsAtKill: number;
  /** Once the killed worker's requests in flight have landed. */
  leadsAfterKill: number;
  killToPollingMs: number;
  killToProgressMs: number;
  wallMs: number;
  timeouts: string[];
}

async function main(): Promise<void> {
  const cleanup: Array<() => Promise<unknown>> = [];
  const workers = new Set<WorkerProcess>();
  try {
    log('starting Temporal dev server and demo APIs');
    const env = await startDevServer({});
    cleanup.unshift(() => env.teardown());
    const address = env.address;
    const sheets = await startSheetsApi({ sheets: Object.fromEntries(SIZES.map((rows) => [sheetOf(rows), rows])) });
    cleanup.unshift(() => sheets.close());
    let client: Client | undefined;
    const floorBundle = await bundleWorkflowCode({
      workflowsPath: BASELINE_WORKFLOWS_PATH,
      logger: Runtime.instance().logger,
    });

    /** A CRM with this latency, and a deployment (config file, task queue, data dir) that imports into it. */
    const deployments = new Map<number, Awaited<ReturnType<typeof deploy>>>();
    const deploy = async (latencyMs: number) => {
      const crm = await startCrmApi({ latencyMs });
      cleanup.unshift(() => crm.close());
      // The workers' blob store and config file live here: a throwaway directory, not the repository's.
      const dataDir = await mkdtemp(join(tmpdir(), 'dcm-bench-long-'));
      cleanup.unshift(() => rm(dataDir, { recursive: true, force: true }));
      const config = parseConfig(
        {
          providers: demoProvidersConfig({ crm, sheets }),
          temporal: { taskQueue: `bench-long-${randomUUID().slice(0, 8)}` },
          dataDir,
          limits: { memoryMb: MEMORY_MB },
        },
        undefined,
        { TEMPORAL_ADDRESS: address },
      );
      const configFile = join(dataDir, 'config.json');
      await writeFile(configFile, JSON.stringify(config));
      const providers = Object.fromEntries(
        Object.entries(config.providers).map(([name, p]) => [name, HttpProviderConfig.parse(p)]),
      );
      if (!client) {
        const connected = await connectClient(config.temporal);
        cleanup.unshift(() => connected.connection.close());
        client = connected;
      }
      // The floor's worker, in this process: each batch of the sheet's rows as one activity.
      const floorTaskQueue = `${config.temporal.taskQueue}-floor`;
      const connection = await connectWorker(config.temporal);
      cleanup.unshift(() => connection.close());
      const postBatch: BaselineActivities['postBatch'] = async (sheet, first, count) => {
        const leads = Array.from({ length: count }, (_, i) => sheetRow(sheet, first + i));
        const request = {
          kind: 'http',
          provider: 'crm',
          method: 'POST',
          path: '/leads/batch',
          body: { leads },
        } as const;
        const outcome = await performRequest(providers.crm, request, `${floorTaskQueue}:${sheet}:${first}`);
        if (!outcome.ok) throw new Error(`the floor's batch at row ${first} failed: ${outcome.error.message}`);
        return (outcome.value as { count: number }).count;
      };
      const floorWorker = await Worker.create({
        connection,
        taskQueue: floorTaskQueue,
        workflowBundle: floorBundle,
        activities: { postBatch },
      });
      const floorRun = floorWorker.run();
      cleanup.unshift(() => {
        floorWorker.shutdown();
        return floorRun;
      });
      return { crm, config, configFile, providers, floorTaskQueue, jobs: new JobService(client, config) };
    };
    for (const { latencyMs } of CASES)
      if (!deployments.has(latencyMs)) deployments.set(latencyMs, await deploy(latencyMs));
    const { crm, config, configFile, jobs } = deployments.get(0)!;
    const historyClient = client!;

    const startWorker = async (file = configFile) => {
      const worker = await spawnWorker(file, address);
      workers.add(worker);
      return worker;
    };
    const stopWorker = async (worker: WorkerProcess, signal: NodeJS.Signals) => {
      await worker.kill(signal);
      workers.delete(worker);
    };
    /** The CRM must hold exactly the sheet's rows, each once, and the script must have counted them. */
    const checkImport = (what: string, rows: number, result: unknown, into = crm) => {
      const { leads, duplicateEmails } = into.stats();
      assert.deepEqual(
        { result, leads, duplicateEmails },
        { result: { created: rows }, leads: rows, duplicateEmails: 0 },
        `${what}: the CRM must hold each of the ${rows} rows exactly once`,
      );
    };
    const startJob = (rows: number, service = jobs) =>
      service.execute({ code: leadImportScript(sheetOf(rows)), waitSeconds: 0 });
    const finish = async (started: JobView, rows: number, service = jobs) => {
      let view = started;
      while (view.status === 'running') view = await service.status(view.job_id, 60);
      if (view.status !== 'completed')
        throw new Error(
          `the durable import of ${rows} rows ended ${view.status}: ${view.error ? `${view.error.name}: ${view.error.message}` : view.note}`,
        );
      return view;
    };

    const imports = [];
    for (const { rows, latencyMs } of CASES) {
      const at = deployments.get(latencyMs)!;
      const what = `${rows} rows, CRM latency ${latencyMs} ms`;
      log(`${what}, direct (${DIRECT_REPEATS} times)`);
      const directSamples = [];
      for (let rep = 0; rep < DIRECT_REPEATS; rep++) {
        at.crm.reset();
        const start = performance.now();
        const result = await runDirect({
          code: leadImportScript(sheetOf(rows)),
          providers: at.providers,
          limits: at.config.limits,
        });
        directSamples.push(performance.now() - start);
        checkImport(`direct import of ${what}`, rows, result, at.crm);
      }
      const directMs = median(directSamples);

      log(`${what}, floor (one workflow task + one activity per batch)`);
      at.crm.reset();
      const floorStart = performance.now();
      const floorCreated = await historyClient.workflow.execute<typeof importBaseline>('importBaseline', {
        taskQueue: at.floorTaskQueue,
        workflowId: `bench-long-floor-${randomUUID()}`,
        args: [sheetOf(rows), rows, BATCH],
      });
      const floorMs = performance.now() - floorStart;
      checkImport(`floor import of ${what}`, rows, { created: floorCreated }, at.crm);

      log(`${what}, durable, on a new worker process`);
      at.crm.reset();
      const worker = await startWorker(at.configFile);
      const durableStart = performance.now();
      const view = await finish(await startJob(rows, at.jobs), rows, at.jobs);
      const durableMs = performance.now() - durableStart;
      const memory = worker.memory();
      await stopWorker(worker, 'SIGTERM');
      checkImport(`durable import of ${what}`, rows, view.result, at.crm);
      const runs = await runsOf(historyClient, view, sheetOf(rows), rows);
      imports.push({
        rows,
        latencyMs,
        directMs,
        directSamples,
        floorMs,
        durableMs,
        ratio: durableMs / directMs,
        floorRatio: durableMs / floorMs,
        rounds: view.rounds!,
        effects: view.effects!,
        workerStartMs: worker.pollingAt - worker.spawnedAt,
        memory,
        runs: runs.map(({ events, jsonBytes, temporalBytes }) => ({ events: events.length, jsonBytes, temporalBytes })),
      });
    }

    // Where the kill lands (a workflow task, an API call, between them) decides which timeouts
    // the job waits out, so the kill is repeated.
    const restarts: Restart[] = [];
    let worker = await startWorker();
    for (let rep = 1; rep <= RESTARTS; rep++) {
      log(`${RESTART_ROWS} rows, durable, worker SIGKILLed at ${KILL_AT * 100}% and replaced (${rep} of ${RESTARTS})`);
      crm.reset();
      const start = performance.now();
      const started = await startJob(RESTART_ROWS);
      while (crm.stats().leads < KILL_AT * RESTART_ROWS) await delay(5);
      // Without it the kill would always land just after a write, in the same phase of a round.
      await delay(Math.random() * KILL_JITTER_MS);
      const killedAt = performance.now();
      const killedAtEpoch = Date.now();
      const leadsAtKill = crm.stats().leads;
      const killed = stopWorker(worker, 'SIGKILL');
      const replacement = startWorker();
      await killed;
      await delay(IN_FLIGHT_SETTLE_MS);
      const leadsAfterKill = crm.stats().leads;
      worker = await replacement;
      while (crm.stats().leads <= leadsAfterKill) await delay(5);
      const progressAt = performance.now();
      const view = await finish(started, RESTART_ROWS);
      const wallMs = performance.now() - start;
      checkImport(`durable import of ${RESTART_ROWS} rows with a killed worker`, RESTART_ROWS, view.result);
      const runs = await runsOf(historyClient, view, sheetOf(RESTART_ROWS), RESTART_ROWS);
      restarts.push({
        leadsAtKill,
        leadsAfterKill,
        killToPollingMs: worker.pollingAt - killedAt,
        killToProgressMs: progressAt - killedAt,
        wallMs,
        timeouts: timeoutsSince(
          runs.flatMap((r) => r.events),
          killedAtEpoch,
        ),
      });
    }
    await stopWorker(worker, 'SIGTERM');

    const uninterruptedMs = imports.find((i) => i.rows === RESTART_ROWS && i.latencyMs === 0)!.durableMs;
    const cell = (values: number[], f: (n: number) => string) => values.map(f).join(' / ');
    console.log(
      `\ndurable-codemode long-jobs bench — ${new Date().toISOString().slice(0, 10)}, ${availableParallelism()} CPUs (${cpus()[0]?.model ?? 'unknown'}), Node ${process.version}`,
    );
    console.log(
      `lead import in batches of 100; no failures; worker limits.memoryMb ${MEMORY_MB}, maxEventsPerRun ${config.maxEventsPerRun}\n`,
    );
    console.log(
      '| rows | CRM latency | direct | floor | durable | durable/direct | durable/floor | rounds | worker RSS polling (peak so far) | worker peak RSS (VmHWM) | max RSS sample | runs | events per run | history per run (Temporal) |',
    );
    console.log('|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|');
    for (const i of imports) {
      console.log(
        `| ${i.rows.toLocaleString('en')} | ${i.latencyMs} ms | ${seconds(i.directMs)} s | ${seconds(i.floorMs)} s (×${(i.floorMs / i.directMs).toFixed(2)}) | ${seconds(i.durableMs)} s | ×${i.ratio.toFixed(2)} | ×${i.floorRatio.toFixed(2)} | ${i.rounds} | ${mb(i.memory.startRss)} MB (${mb(i.memory.startPeakRss)} MB) | ${mb(i.memory.peakRss)} MB | ${mb(i.memory.sampledPeakRss)} MB | ${i.runs.length} | ${cell(
          i.runs.map((r) => r.events),
          String,
        )} | ${cell(
          i.runs.map((r) => r.temporalBytes),
          (b) => `${(b / 1024).toFixed(0)} KiB`,
        )} |`,
      );
    }
    console.log(
      `\n${RESTART_ROWS.toLocaleString('en')} rows, worker SIGKILLed at ${KILL_AT * 100}% and a new one started at once (uninterrupted: ${seconds(uninterruptedMs)} s)`,
    );
    const lost = (r: Restart) => r.wallMs - uninterruptedMs;
    console.log(
      `medians: kill → new worker polling ${seconds(median(restarts.map((r) => r.killToPollingMs)))} s, kill → next new lead ${seconds(median(restarts.map((r) => r.killToProgressMs)))} s, wall time lost ${seconds(median(restarts.map(lost)))} s\n`,
    );
    console.log(
      '| leads at the kill (+ in flight) | kill → new worker polling | kill → next new lead | wall (lost) | Temporal timeouts after the kill |',
    );
    console.log('|---:|---:|---:|---:|---|');
    for (const r of restarts) {
      console.log(
        `| ${r.leadsAtKill} (+${r.leadsAfterKill - r.leadsAtKill}) | ${seconds(r.killToPollingMs)} s | ${seconds(r.killToProgressMs)} s | ${seconds(r.wallMs)} s (${seconds(lost(r))} s) | ${r.timeouts.join('; ') || 'none'} |`,
      );
    }
    const round = (n: number) => Math.round(n);
    const json = {
      date: new Date().toISOString(),
      node: process.version,
      cpus: availableParallelism(),
      temporalCli: findTemporalCli() ?? 'cached-download',
      memoryMb: MEMORY_MB,
      maxEventsPerRun: config.maxEventsPerRun,
      imports: imports.map((i) => ({
        rows: i.rows,
        latencyMs: i.latencyMs,
        directMs: round(i.directMs),
        directSamplesMs: i.directSamples.map(round),
        floorMs: round(i.floorMs),
        durableMs: round(i.durableMs),
        ratio: Math.round(i.ratio * 100) / 100,
        floorRatio: Math.round(i.floorRatio * 100) / 100,
        rounds: i.rounds,
        effects: i.effects,
        workerStartMs: round(i.workerStartMs),
        workerRssMb: {
          // Once polling, before the start-up collection that follows (bench:worker-start measures idle).
          polling: mb(i.memory.startRss),
          peakAtPolling: mb(i.memory.startPeakRss),
          peak: mb(i.memory.peakRss),
          sampledPeak: mb(i.memory.sampledPeakRss),
        },
        runs: i.runs,
      })),
      restartRows: RESTART_ROWS,
      restarts: restarts.map((r) => ({
        ...r,
        killToPollingMs: round(r.killToPollingMs),
        killToProgressMs: round(r.killToProgressMs),
        wallMs: round(r.wallMs),
        lostMs: round(lost(r)),
      })),
    };
    console.log(`\nBENCH_JSON ${JSON.stringify(json)}`);
  } finally {
    log('shutting down');
    // Workers first, while Temporal still answers their shutdown.
    await Promise.all([...workers].map((w) => w.kill('SIGTERM')));
    for (const step of cleanup) await step();
  }
}

await main();
