/**
 * `npm run bench:freeze`: how long a job stalls when the workers holding it freeze (SIGSTOP: a GC
 * pause of the whole process, a suspended VM, a laptop lid) against when they die (SIGKILL), side
 * by side on this machine, and which writes reach the API twice.
 *
 * Each trial: two workers (child processes), a job of 40 sequential `POST /leads` against the CRM
 * demo API (100 ms latency, the provider's `retry.maximumAttempts` 2), then a third worker, started
 * and polling before the fault. Once 10 leads are in (plus a random delay under 150 ms, so the
 * fault lands anywhere in a round), both first workers get the signal. Measured: the time from the
 * fault until the CRM gets a write from the third worker; the timeouts Temporal recorded after the
 * fault; the writes the CRM got twice (same Idempotency-Key) and the calls the job reports
 * uncertain. Frozen workers are thawed after FREEZE_MS and must send nothing stale. Trials
 * alternate SIGSTOP and SIGKILL, RUNS of each, against one in-memory Temporal dev server
 * (temporal/dev-server.ts: its keepalive drops a frozen worker's connection within about 1.5 s).
 *
 * Every trial must end with the job completed, exactly 40 leads, and no write sent twice except the
 * one in flight at the fault, which the job must report uncertain by its Idempotency-Key.
 */
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { availableParallelism, tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as delay } from 'node:timers/promises';
import { DefaultLogger, Runtime } from '@temporalio/worker';
import { parseConfig } from '../cli/config.ts';
import { CRM_SPEC_PATH, startCrmApi } from '../demo-apis/crm.ts';
import { JobService } from '../jobs/service.ts';
import { connectClient } from '../temporal/connection.ts';
import { findTemporalCli, startDevServer } from '../temporal/dev-server.ts';
import { inFlightAt, timeoutsSince } from './fault-report.ts';
import { spawnWorker, type WorkerProcess } from './worker-process.ts';

// The client's logs at INFO would bury the table.
Runtime.install({ logger: new DefaultLogger('WARN') });

const RUNS = Number(process.env.DCM_BENCH_FREEZE_RUNS ?? 5);
const LEADS = 40;
const FAULT_AT_LEADS = 10;
const FAULT_JITTER_MS = 150;
const FREEZE_MS = 12_000;
const CRM_LATENCY_MS = 100;
/** What a worker sent before the fault reaches the CRM (in this process) within this. */
const IN_FLIGHT_SETTLE_MS = 200;
/** Thawed workers get this long to send anything stale before the writes are counted. */
const AFTER_THAW_MS = 3_000;

type Fault = 'SIGSTOP' | 'SIGKILL';

interface Trial {
  fault: Fault;
  faultToProgressMs: number;
  writes: number;
  repeatedWrites: number;
  uncertainCalls: number;
  timeouts: string[];
}

const log = (line: string) => console.error(`[bench] ${line}`);
const seconds = (ms: number) => (ms / 1000).toFixed(1);
const sorted = (xs: number[]) => [...xs].sort((a, b) => a - b);
const median = (xs: number[]) => sorted(xs)[Math.floor(xs.length / 2)];

async function until(check: () => boolean, ms: number, what: string): Promise<void> {
  const deadline = performance.now() + ms;
  while (!check()) {
    if (performance.now() > deadline) throw new Error(`no ${what} within ${ms / 1000} s`);
    await delay(20);
  }
}

async function main(): Promise<void> {
  const cleanup: Array<() => Promise<unknown>> = [];
  const workers = new Set<WorkerProcess>();
  try {
    log('starting Temporal dev server and the CRM demo API');
    const server = await startDevServer({});
    cleanup.unshift(() => server.teardown());
    const crm = await startCrmApi({ latencyMs: CRM_LATENCY_MS });
    cleanup.unshift(() => crm.close());
    const dataDir = await mkdtemp(join(tmpdir(), 'dcm-bench-freeze-'));
    cleanup.unshift(() => rm(dataDir, { recursive: true, force: true }));
    const config = parseConfig(
      {
        providers: {
          crm: { openapi: CRM_SPEC_PATH, baseUrl: crm.url, retry: { maximumAttempts: 2, initialIntervalMs: 200 } },
        },
        temporal: { taskQueue: `bench-freeze-${randomUUID().slice(0, 8)}` },
        dataDir,
      },
      undefined,
      { TEMPORAL_ADDRESS: server.address },
    );
    const configFile = join(dataDir, 'config.json');
    await writeFile(configFile, JSON.stringify(config));
    const client = await connectClient(config.temporal);
    cleanup.unshift(() => client.connection.close());
    const jobs = new JobService(client, config);
    const posts = () => crm.stats().byRoute['POST /leads'] ?? 0;
    const startWorker = async () => {
      const worker = await spawnWorker(configFile, server.address);
      workers.add(worker);
      return worker;
    };
    const code = `async () => {
      for (let i = 0; i < ${LEADS}; i++) {
        await crm.request({ method: 'POST', path: '/leads', body: { name: 'Lead ' + i, email: 'lead' + i + '@example.com' } });
      }
      return 'done';
    }`;

    const trials: Trial[] = [];
    for (let run = 0; run < RUNS; run++) {
      for (const fault of ['SIGSTOP', 'SIGKILL'] as const) {
        log(`run ${run + 1}/${RUNS}: ${fault}`);
        crm.reset();
        const victims = [await startWorker(), await startWorker()];
        const started = await jobs.execute({ code, waitSeconds: 0 });
        const healthy = await startWorker();
        await until(() => posts() >= FAULT_AT_LEADS, 60_000, `${FAULT_AT_LEADS} writes`);
        await delay(Math.random() * FAULT_JITTER_MS);
        for (const w of victims) w.signal(fault);
        const faultAt = Date.now();
        await delay(IN_FLIGHT_SETTLE_MS);
        const before = posts();
        const sentBeforeFault = crm.writes().map((w) => w.idempotencyKey);
        await until(() => posts() > before, 120_000, 'write after the fault');
        const faultToProgressMs = Date.now() - faultAt;
        if (fault === 'SIGSTOP') {
          await delay(Math.max(0, faultAt + FREEZE_MS - Date.now()));
          for (const w of victims) w.signal('SIGCONT');
        }
        let view = started;
        while (view.status === 'running') view = await jobs.status(view.job_id, 30);
        assert.equal(view.status, 'completed', `${fault} trial: ${JSON.stringify(view.error ?? view.note)}`);
        await delay(AFTER_THAW_MS);
        const { leads, duplicateEmails, replayedKeys } = crm.stats();
        assert.deepEqual({ leads, duplicateEmails }, { leads: LEADS, duplicateEmails: 0 });
        // Only a write in flight at the fault may reach the CRM twice, and the job reports it uncertain.
        const uncertain = view.uncertain_keys ?? [];
        const inFlight = inFlightAt(sentBeforeFault.at(-1));
        assert.deepEqual(
          uncertain.filter((k) => !inFlight(k)),
          [],
          'uncertain calls not in flight at the fault',
        );
        assert.deepEqual(
          replayedKeys,
          uncertain.filter((k) => replayedKeys.includes(k)),
          'writes sent twice',
        );
        const history = await client.workflow.getHandle(view.job_id).fetchHistory();
        trials.push({
          fault,
          faultToProgressMs,
          writes: posts(),
          repeatedWrites: replayedKeys.length,
          uncertainCalls: view.uncertain_calls ?? 0,
          timeouts: timeoutsSince(history.events ?? [], faultAt),
        });
        await Promise.all([...victims, healthy].map((w) => w.kill('SIGKILL')));
        for (const w of [...victims, healthy]) workers.delete(w);
      }
    }

    console.log(
      `\n| fault | fault → progress elsewhere | writes for ${LEADS} leads | sent twice | uncertain | timeouts after the fault |`,
    );
    console.log('|---|---:|---:|---:|---:|---|');
    for (const t of trials)
      console.log(
        `| ${t.fault} | ${seconds(t.faultToProgressMs)} s | ${t.writes} | ${t.repeatedWrites} | ${t.uncertainCalls} | ${t.timeouts.join('; ') || 'none'} |`,
      );
    const summary = Object.fromEntries(
      (['SIGSTOP', 'SIGKILL'] as const).map((fault) => {
        const ms = trials.filter((t) => t.fault === fault).map((t) => t.faultToProgressMs);
        return [fault, { minMs: sorted(ms)[0], medianMs: median(ms), maxMs: sorted(ms).at(-1)! }];
      }),
    );
    for (const [fault, s] of Object.entries(summary))
      console.log(
        `${fault}: fault → progress min ${seconds(s.minMs)} s, median ${seconds(s.medianMs)} s, max ${seconds(s.maxMs)} s`,
      );
    console.log(
      `frozen / killed (medians): ×${(summary.SIGSTOP.medianMs / summary.SIGKILL.medianMs).toFixed(2)}; writes sent twice per trial: ${trials.map((t) => t.repeatedWrites).join(', ')}`,
    );
    const json = {
      date: new Date().toISOString(),
      node: process.version,
      cpus: availableParallelism(),
      temporalCli: findTemporalCli() ?? 'cached-download',
      summary,
      trials,
    };
    console.log(`\nBENCH_JSON ${JSON.stringify(json)}`);
  } finally {
    log('shutting down');
    for (const w of workers) w.signal('SIGCONT');
    await Promise.all([...workers].map((w) => w.kill('SIGKILL')));
    for (const step of cleanup) await step();
  }
}

await main();
