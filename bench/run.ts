/**
 * `npm run bench`: what the durable model costs, from one run on this machine.
 *
 * 1. Sandbox start: a bare isolate + context, and a full ScriptSession.open (runtime installed).
 * 2. 200 sequential CRM creates by the same script, run directly (ScriptSession driven round by
 *    round, each call made with performRequest: the worker's work minus Temporal) and durably
 *    (JobService.execute on an in-process worker).
 * 3. The floor: a bare Temporal workflow making each create as one activity (one workflow task
 *    plus one activity per call), 200 times.
 * 4. The same 200 creates as 20 rounds of Promise.all(10): directly, on the floor (one workflow task
 *    and ten activities per round) and durably.
 *
 * Everything runs against its own in-memory Temporal dev server and a CRM demo API with 10 ms latency;
 * with DCM_BENCH_TEMPORAL_ADDRESS, against that Temporal server instead (e.g. a native cluster's,
 * `deploy/native/cluster.sh env`), to compare a cluster on PostgreSQL with the dev server; with
 * DCM_BENCH_SQLITE_FILE=1, on a dev server keeping its state in a SQLite file, as `dev` does.
 */
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { availableParallelism, cpus, tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { DefaultLogger, Runtime, Worker } from '@temporalio/worker';
import { Calls } from '../activities/calls.ts';
import { ClaimCheck } from '../blobs/claim-check.ts';
import { LocalBlobStore } from '../blobs/local-store.ts';
import { type Durability, type Json, RunnableJob } from '../core/journal.ts';
import { CRM_SPEC_PATH, startCrmApi, type CrmApi } from '../demo-apis/crm.ts';
import { performRequest } from '../providers/http-client.ts';
import { UpstreamMcpServers } from '../providers/mcp-client.ts';
import { createIsolate } from '../sandbox/isolate.ts';
import { ScriptSession } from '../sandbox/session.ts';
import { parseConfig } from '../cli/config.ts';
import { HttpProviderConfig } from '../providers/config.ts';
import { JobService } from '../jobs/service.ts';
import { connectClient, connectWorker } from '../temporal/connection.ts';
import { findTemporalCli, startDevServer } from '../temporal/dev-server.ts';
import { startWorker } from '../temporal/worker.ts';
import type { baseline } from './baseline-workflow.ts';
import { runDirect } from './direct.ts';

// Worker state changes at INFO would bury the table.
Runtime.install({ logger: new DefaultLogger('WARN') });

const CALLS = 200;
/** Warm-up runs are shorter: they only need to load code and open connections. */
const WARMUP_CALLS = 20;
const PARALLEL = 10;
/** Short runs (a 20-round job is ~0.4 s) vary with the machine: the median of five. */
const REPEATS = 5;
const SANDBOX_SAMPLES = 50;
const CRM_LATENCY_MS = 10;
const MEMORY_MB = 128;
const BASELINE_WORKFLOWS_PATH = fileURLToPath(new URL('./baseline-workflow.ts', import.meta.url));

/** The one script of every run: `input.calls` creates, `input.batch` at a time (1 = sequential). */
const SCRIPT = `async () => {
  const ids = new Set();
  for (let i = 0; i < input.calls; i += input.batch) {
    const leads = await Promise.all(Array.from({ length: input.batch }, (_, j) => crm.request({
      method: 'POST',
      path: '/leads',
      body: { name: 'Bench lead ' + (i + j), email: input.run + '-' + (i + j) + '@bench.example.com' },
    })));
    for (const lead of leads) ids.add(lead.id);
  }
  return ids.size;
}`;

const log = (line: string) => console.error(`[bench] ${line}`);

async function timed(fn: () => Promise<unknown>): Promise<number> {
  const start = performance.now();
  await fn();
  return performance.now() - start;
}

function percentile(samples: number[], p: number): number {
  const sorted = [...samples].sort((a, b) => a - b);
  return sorted[Math.max(0, Math.ceil((p / 100) * sorted.length) - 1)];
}

const median = (samples: number[]) => percentile(samples, 50);
const round2 = (ms: number) => Math.round(ms * 100) / 100;

/** `samples` timings of `fn`, after one warm-up. */
async function sample(samples: number, fn: () => Promise<number>): Promise<number[]> {
  await fn();
  const times = [];
  for (let i = 0; i < samples; i++) times.push(await fn());
  return times;
}

async function isolateStart(): Promise<number> {
  const start = performance.now();
  const isolate = createIsolate(MEMORY_MB);
  await isolate.createContext();
  const ms = performance.now() - start;
  isolate.dispose();
  return ms;
}

async function trivialSessionOpen(): Promise<number> {
  const job = RunnableJob.parse({ jobId: `bench-open-${randomUUID()}`, code: 'async () => 1' });
  const start = performance.now();
  const { report } = await ScriptSession.open({ job, providers: [{ name: 'crm' }], rounds: [], now: Date.now() });
  const ms = performance.now() - start;
  assert.deepEqual(report.outcome, { kind: 'returned', value: 1 });
  return ms;
}

/** CPU time (user + system) process `pid` has used so far, in ms (Linux /proc). */
function cpuMs(pid: number): number {
  const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1].split(' ');
  // utime and stime are fields 14 and 15 of /proc/<pid>/stat, in clock ticks (100 per second on Linux).
  return (Number(fields[11]) + Number(fields[12])) * 10;
}

const createLead = { kind: 'http', provider: 'crm', method: 'POST', path: '/leads' } as const;

/**
 * What the call path's records add to a call: CALLS sequential creates with performRequest alone,
 * and through the call path (activities/calls.ts) with the local blob store, as a fresh round's
 * first try (intent and outcome written) and as a retry (records read first). Interleaved.
 */
async function measureRecords(crm: CrmApi, provider: HttpProviderConfig, dataDir: string) {
  const store = new LocalBlobStore(join(dataDir, 'records-bench'));
  const calls = new Calls({
    providers: { crm: provider },
    upstream: new UpstreamMcpServers({}),
    store,
    claims: new ClaimCheck(store, 4096),
    workerId: 'bench',
  });
  const attempt = {
    token: { job: 1, scheduledAt: 0 },
    signal: new AbortController().signal,
    cancelGraceMs: 0,
    assertCurrent() {},
  };
  const ways = {
    direct: (run: string, i: number, body: Json) => performRequest(provider, { ...createLead, body }, `${run}:${i}`),
    fresh: (run: string, i: number, body: Json) =>
      calls.call(attempt, {
        jobId: run,
        request: { ...createLead, body },
        idempotencyKey: `${run}:${i}`,
        maximumAttempts: 1,
        fresh: true,
      }),
    retry: (run: string, i: number, body: Json) =>
      calls.call(attempt, {
        jobId: run,
        request: { ...createLead, body },
        idempotencyKey: `${run}:${i}`,
        maximumAttempts: 1,
      }),
  };
  const samples = { direct: [] as number[], fresh: [] as number[], retry: [] as number[] };
  for (let rep = 0; rep <= REPEATS; rep++) {
    for (const [way, call] of Object.entries(ways) as Array<[keyof typeof ways, (typeof ways)['direct']]>) {
      crm.reset();
      const run = `records-${way}-${randomUUID().slice(0, 8)}`;
      const ms = await timed(async () => {
        for (let i = 0; i < CALLS; i++) await call(run, i, { name: `R${i}`, email: `${run}-${i}@bench.example.com` });
      });
      assert.equal(crm.stats().leads, CALLS, `${way}: the CRM must get exactly ${CALLS} creates`);
      if (rep > 0) samples[way].push(ms); // the first round is the warm-up
    }
  }
  await calls.close();
  return samples;
}

function table(rows: string[][]): string {
  const widths = rows[0].map((_, c) => Math.max(...rows.map((r) => r[c].length)));
  return rows
    .map((r) => r.map((cell, c) => (c === 0 ? cell.padEnd(widths[c]) : cell.padStart(widths[c]))).join('   '))
    .join('\n');
}

async function main(): Promise<void> {
  log(`sandbox start: ${SANDBOX_SAMPLES} samples each`);
  const isolateMs = await sample(SANDBOX_SAMPLES, isolateStart);
  const sessionOpenMs = await sample(SANDBOX_SAMPLES, trivialSessionOpen);

  const cleanup: Array<() => Promise<unknown>> = [];
  try {
    let temporalAddress = process.env.DCM_BENCH_TEMPORAL_ADDRESS;
    /** The Temporal server process, when this bench started it: its CPU time is measured. */
    let serverPid: number | undefined;
    // The worker's blob store (and with DCM_BENCH_SQLITE_FILE the server's state) lives under
    // dataDir: a throwaway one, not the repository's.
    const dataDir = await mkdtemp(join(tmpdir(), 'dcm-bench-'));
    cleanup.unshift(() => rm(dataDir, { recursive: true, force: true }));
    if (temporalAddress) {
      log(`using the Temporal server at ${temporalAddress}; starting CRM demo API and workers`);
    } else {
      const dbFilename = process.env.DCM_BENCH_SQLITE_FILE ? join(dataDir, 'temporal.sqlite') : undefined;
      log(
        `starting Temporal dev server (${dbFilename ? 'state in a SQLite file, as `dev` keeps it' : 'in memory'}), CRM demo API and workers`,
      );
      const env = await startDevServer({ dbFilename });
      cleanup.unshift(() => env.teardown());
      temporalAddress = env.address;
      serverPid = env.pid;
    }
    const crm = await startCrmApi({ latencyMs: CRM_LATENCY_MS });
    cleanup.unshift(() => crm.close());
    const config = parseConfig(
      {
        providers: { crm: { openapi: CRM_SPEC_PATH, baseUrl: crm.url } },
        temporal: { taskQueue: `bench-${randomUUID().slice(0, 8)}` },
        dataDir,
      },
      undefined,
      { TEMPORAL_ADDRESS: temporalAddress },
    );
    const crmProvider = HttpProviderConfig.parse(config.providers.crm);
    const client = await connectClient(config.temporal);
    cleanup.unshift(() => client.connection.close());
    const connection = await connectWorker(config.temporal);
    cleanup.unshift(() => connection.close());
    const worker = await startWorker(config, connection);
    cleanup.unshift(() => worker.shutdown());
    const baselineTaskQueue = `${config.temporal.taskQueue}-baseline`;
    const baselineWorker = await Worker.create({
      connection,
      taskQueue: baselineTaskQueue,
      workflowsPath: BASELINE_WORKFLOWS_PATH,
      activities: {
        createLead: async (run: string, i: number) => {
          const body = { name: `Bench lead ${i}`, email: `${run}-${i}@bench.example.com` };
          const outcome = await performRequest(crmProvider, { ...createLead, body }, `${run}:${i}`);
          assert(outcome.ok, `the floor's create ${i} failed`);
        },
      },
    });
    const baselineRun = baselineWorker.run();
    cleanup.unshift(() => {
      baselineWorker.shutdown();
      return baselineRun;
    });
    const jobs = new JobService(client, config);

    const direct = (input: Json) =>
      runDirect({ code: SCRIPT, input, providers: { crm: crmProvider }, limits: config.limits });

    /** Temporal server CPU ms per round, per scenario, summed over the measured runs. */
    const serverCpu: Record<string, { ms: number; rounds: number }> = {};
    /** Runs `fn` (a scenario of `rounds` rounds), adding the Temporal server's CPU time it took to `serverCpu[mode]`. */
    async function onServerCpu<T>(mode: string, rounds: number, fn: () => Promise<T>): Promise<T> {
      const before = serverPid === undefined ? undefined : cpuMs(serverPid);
      const result = await fn();
      if (before !== undefined) {
        const total = (serverCpu[mode] ??= { ms: 0, rounds: 0 });
        total.ms += cpuMs(serverPid!) - before;
        total.rounds += rounds;
      }
      return result;
    }

    function durable(durability?: Durability) {
      return async (input: Json): Promise<unknown> => {
        let view = await jobs.execute({ code: SCRIPT, input, waitSeconds: 60, durability });
        while (view.status === 'running') view = await jobs.status(view.job_id, 60);
        if (view.status !== 'completed')
          throw new Error(`durable run ${view.status}: ${view.error?.message ?? view.note}`);
        return view.result;
      };
    }

    /** Times one run of the script on an emptied CRM, then checks the CRM got exactly `calls` creates. */
    function creates(
      mode: string,
      batch: number,
      run: (input: Json) => Promise<unknown>,
    ): (calls: number) => Promise<number> {
      return async (calls) => {
        crm.reset();
        let result: unknown;
        const input = { run: `${mode}-${randomUUID().slice(0, 8)}`, calls, batch };
        const ms = await onServerCpu(mode, calls / batch, () => timed(async () => (result = await run(input))));
        const stats = crm.stats();
        assert.deepEqual(
          {
            result,
            leads: stats.leads,
            requests: stats.byRoute['POST /leads'],
            duplicateEmails: stats.duplicateEmails,
          },
          { result: calls, leads: calls, requests: calls, duplicateEmails: 0 },
          `${mode}: the CRM must get exactly ${calls} creates`,
        );
        return ms;
      };
    }

    const floor = (input: Json) => {
      const { run, calls, batch } = input as { run: string; calls: number; batch: number };
      return client.workflow.execute<typeof baseline>('baseline', {
        taskQueue: baselineTaskQueue,
        workflowId: `bench-baseline-${randomUUID()}`,
        args: [run, calls, batch],
      });
    };

    const scenarios = {
      sequentialDirect: creates('seq-direct', 1, direct),
      sequentialDurable: creates('seq-durable', 1, durable()),
      sequentialBatched: creates('seq-batched', 1, durable('batched')),
      floor: creates('floor', 1, floor),
      parallelDirect: creates('par-direct', PARALLEL, direct),
      parallelFloor: creates('par-floor', PARALLEL, floor),
      parallelDurable: creates('par-durable', PARALLEL, durable()),
    };
    type Scenario = keyof typeof scenarios;
    const names = Object.keys(scenarios) as Scenario[];

    log(`warm-up: one run of each with ${WARMUP_CALLS} calls`);
    for (const name of names) await scenarios[name](WARMUP_CALLS);
    for (const k of Object.keys(serverCpu)) delete serverCpu[k];

    log(`the call path's records: ${CALLS} sequential creates, ${REPEATS} times each way`);
    const recordSamples = await measureRecords(crm, crmProvider, dataDir);
    // Interleaved, so drift on the machine spreads over every scenario alike.
    const samples = Object.fromEntries(names.map((name) => [name, [] as number[]])) as Record<Scenario, number[]>;
    for (let rep = 1; rep <= REPEATS; rep++) {
      log(`measuring: repetition ${rep} of ${REPEATS}`);
      for (const name of names) samples[name].push(await scenarios[name](CALLS));
    }

    const ms = Object.fromEntries(names.map((name) => [name, median(samples[name])])) as Record<Scenario, number>;
    const parallelRounds = CALLS / PARALLEL;
    const overheadPerRound = {
      sequential: (ms.sequentialDurable - ms.sequentialDirect) / CALLS,
      parallel: (ms.parallelDurable - ms.parallelDirect) / parallelRounds,
    };
    const ratios = {
      sequentialDurableVsDirect: ms.sequentialDurable / ms.sequentialDirect,
      floorVsDirect: ms.floor / ms.sequentialDirect,
      sequentialDurableVsFloor: ms.sequentialDurable / ms.floor,
      sequentialBatchedVsDirect: ms.sequentialBatched / ms.sequentialDirect,
      parallelFloorVsDirect: ms.parallelFloor / ms.parallelDirect,
      parallelDurableVsDirect: ms.parallelDurable / ms.parallelDirect,
      parallelDurableVsFloor: ms.parallelDurable / ms.parallelFloor,
    };
    const records = Object.fromEntries(
      Object.entries(recordSamples).map(([way, samples]) => [way, median(samples) / CALLS]),
    ) as Record<keyof typeof recordSamples, number>;
    const cpuPerRound = Object.fromEntries(
      Object.entries(serverCpu).map(([mode, { ms, rounds }]) => [mode, ms / rounds]),
    );
    const cpu = (mode: string) => (cpuPerRound[mode] === undefined ? 'n/a' : f(cpuPerRound[mode]));

    const f = (n: number) => n.toFixed(2);
    const x = (n: number) => `×${n.toFixed(2)}`;
    const row = (label: string, wall: number, rounds: number, serverCpu: string, note: string) => [
      label,
      f(wall),
      f(wall / CALLS),
      String(rounds),
      f(wall / rounds),
      serverCpu,
      note,
    ];
    console.log(
      `\ndurable-codemode bench — ${new Date().toISOString().slice(0, 10)}, ${availableParallelism()} CPUs (${cpus()[0]?.model ?? 'unknown'}), Node ${process.version}`,
    );
    console.log(`CRM latency ${CRM_LATENCY_MS} ms; medians of ${REPEATS} runs after 1 warm-up\n`);
    console.log(
      table([
        ['Sandbox start', 'median ms', 'p95 ms'],
        [
          `new Isolate({ memoryLimit: ${MEMORY_MB} }) + createContext() (n=${SANDBOX_SAMPLES})`,
          f(median(isolateMs)),
          f(percentile(isolateMs, 95)),
        ],
        [
          `ScriptSession.open('async () => 1') (n=${SANDBOX_SAMPLES})`,
          f(median(sessionOpenMs)),
          f(percentile(sessionOpenMs, 95)),
        ],
      ]),
    );
    console.log();
    console.log(
      table([
        [`the call path, ${CALLS} sequential POST /leads`, 'ms/call', 'extra ms/call'],
        ['performRequest alone', f(records.direct), ''],
        ['call path, a fresh round (intent + outcome written)', f(records.fresh), f(records.fresh - records.direct)],
        ['call path, a retry (records read, then written)', f(records.retry), f(records.retry - records.direct)],
      ]),
    );
    console.log();
    console.log(
      table([
        [`${CALLS} POST /leads`, 'wall ms', 'ms/call', 'rounds', 'ms/round', 'server CPU ms/round', 'comparison'],
        row('sequential, direct (no Temporal)', ms.sequentialDirect, CALLS, '', ''),
        row(
          'floor: a workflow task + an activity per call',
          ms.floor,
          CALLS,
          cpu('floor'),
          `${x(ratios.floorVsDirect)} direct`,
        ),
        row(
          'sequential, durable (JobService.execute)',
          ms.sequentialDurable,
          CALLS,
          cpu('seq-durable'),
          `${x(ratios.sequentialDurableVsDirect)} direct, ${x(ratios.sequentialDurableVsFloor)} the floor`,
        ),
        row(
          'sequential, durable, batched mode',
          ms.sequentialBatched,
          CALLS,
          cpu('seq-batched'),
          `${x(ratios.sequentialBatchedVsDirect)} direct`,
        ),
        row(`${parallelRounds} × Promise.all(${PARALLEL}), direct`, ms.parallelDirect, parallelRounds, '', ''),
        row(
          `${parallelRounds} × Promise.all(${PARALLEL}), floor: a workflow task + ${PARALLEL} activities per round`,
          ms.parallelFloor,
          parallelRounds,
          cpu('par-floor'),
          `${x(ratios.parallelFloorVsDirect)} direct`,
        ),
        row(
          `${parallelRounds} × Promise.all(${PARALLEL}), durable`,
          ms.parallelDurable,
          parallelRounds,
          cpu('par-durable'),
          `${x(ratios.parallelDurableVsDirect)} direct, ${x(ratios.parallelDurableVsFloor)} the floor, +${f(overheadPerRound.parallel)} ms/round`,
        ),
      ]),
    );
    const json = {
      date: new Date().toISOString(),
      node: process.version,
      cpus: availableParallelism(),
      temporalServer: process.env.DCM_BENCH_TEMPORAL_ADDRESS
        ? `external at ${process.env.DCM_BENCH_TEMPORAL_ADDRESS}`
        : `dev server (${findTemporalCli() ?? 'cached-download'}${process.env.DCM_BENCH_SQLITE_FILE ? ', state in a SQLite file' : ''})`,
      crmLatencyMs: CRM_LATENCY_MS,
      calls: CALLS,
      parallel: PARALLEL,
      repeats: REPEATS,
      isolateStartMs: { median: round2(median(isolateMs)), p95: round2(percentile(isolateMs, 95)) },
      sessionOpenMs: { median: round2(median(sessionOpenMs)), p95: round2(percentile(sessionOpenMs, 95)) },
      medianMs: Object.fromEntries(names.map((name) => [name, round2(ms[name])])),
      samplesMs: Object.fromEntries(names.map((name) => [name, samples[name].map(round2)])),
      overheadPerRoundMs: {
        sequential: round2(overheadPerRound.sequential),
        parallel: round2(overheadPerRound.parallel),
      },
      ratios: Object.fromEntries(Object.entries(ratios).map(([k, v]) => [k, round2(v)])),
      recordsMsPerCall: Object.fromEntries(Object.entries(records).map(([k, v]) => [k, round2(v)])),
      serverCpuMsPerRound: Object.fromEntries(Object.entries(cpuPerRound).map(([k, v]) => [k, round2(v)])),
    };
    console.log(`\nBENCH_JSON ${JSON.stringify(json)}`);
  } finally {
    log('shutting down');
    for (const step of cleanup) await step();
  }
}

await main();
