#!/usr/bin/env -S node --no-node-snapshot
/**
 * Records workflow histories of this release into test/fixtures/histories/, one file per run.
 * test/replay.test.ts replays every recorded file with the current workflow code, so a change that
 * would break jobs started under an earlier release fails the suite. Run it for each release
 * (`npm run record-histories`) and keep the older files: they are the compatibility promise.
 */
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { historyToJSON } from '@temporalio/common/lib/proto-utils.js';
import { DefaultLogger, Runtime } from '@temporalio/worker';
import { demoProvidersConfig, startCrmApi, startSheetsApi } from '../demo-apis/index.ts';
import { parseConfig } from '../cli/config.ts';
import { PRODUCT_VERSION } from '../core/version.ts';
import { JobService } from '../jobs/service.ts';
import { connectClient, connectWorker } from '../temporal/connection.ts';
import { startDevServer } from '../temporal/dev-server.ts';
import { startWorker } from '../temporal/worker.ts';

Runtime.install({ logger: new DefaultLogger('ERROR') });

const OUT = new URL('../test/fixtures/histories/', import.meta.url);

const SCRIPTS: Record<
  string,
  {
    code: string;
    input?: unknown;
    loseSessionAfterMs?: number;
    resumeWith?: string;
    cancelAfterMs?: number;
    /** The CRM answers after this long, for this job only. */
    crmLatencyMs?: number;
    /** Cancel 100 ms after the CRM created this many leads (mid-round, before the round's first heartbeat). */
    cancelAfterLeads?: number;
    /** Each pending approval is answered in turn: true approves, false denies. */
    answers?: boolean[];
  }
> = {
  'parallel-steps-sleep-checkpoint': {
    code: `async () => {
      const rows = await step('rows', () => [1, 2, 3].map((i) => ({ name: 'H' + i, email: 'h' + i + '.' + Math.floor(Math.random() * 1e9) + '@example.com' })));
      const created = await Promise.all(rows.map((body) => crm.request({ method: 'POST', path: '/leads', body })));
      await sleep(50);
      await checkpoint({ done: created.length });
      progress(3, 3, 'done');
      console.log('created', created.length);
      return created.map((l) => l.name);
    }`,
  },
  'replay-after-lost-session': {
    code: `async () => { for (let i = 0; i < 4; i++) { await crm.request({ method: 'GET', path: '/leads', query: { limit: 1 } }); await sleep(300); } return 'ok'; }`,
    loseSessionAfterMs: 700,
  },
  'continue-as-new': {
    code: `async () => { let n = 0; for (let i = 0; i < 40; i++) n += (await crm.request({ method: 'GET', path: '/leads', query: { limit: 1 } })).leads.length; return n; }`,
  },
  'failed-then-resumed': {
    code: `async () => { await crm.request({ method: 'GET', path: '/leads', query: { limit: 1 } }); throw new Error('bug'); }`,
    resumeWith: `async () => { await crm.request({ method: 'GET', path: '/leads', query: { limit: 1 } }); return 'fixed'; }`,
  },
  cancelled: { code: `async () => { await checkpoint({ at: 1 }); await sleep(600000); }`, cancelAfterMs: 1000 },
  // Cancelled while round 2 runs: round 3's call, started ahead, is collected (release 0.5.0).
  'cancelled-between-rounds': {
    code: `async () => { for (let i = 0; i < 4; i++) await crm.request({ method: 'POST', path: '/leads', body: { name: 'C' + i, email: 'c' + i + '.' + Date.now() + '@example.com' } }); return 'never'; }`,
    crmLatencyMs: 300,
    cancelAfterLeads: 1,
  },
  // approve() and a call held by the approval policy (crm's DELETE rule below), approved then denied.
  approvals: {
    code: `async () => {
      const [a] = await Promise.all([approve('Record this job?', { n: 1 }), crm.request({ method: 'GET', path: '/leads', query: { limit: 1 } })]);
      const denied = await crm.request({ method: 'DELETE', path: '/leads/lead_000001' }).catch((e) => e.name);
      return [a.by, denied];
    }`,
    answers: [true, false],
  },
  // each() with a row the CRM refuses (422): the ledger's entries, one failed item, a completed job.
  'each-ledger': {
    code: `async () => each(input.rows, async (row) => (await crm.request({ method: 'POST', path: '/leads', body: row })).id, { key: (row) => row.email, concurrency: 3 })`,
    input: {
      rows: ['a', 'b', 'not-an-address', 'd', 'e'].map((name) => ({
        name,
        email: name.includes('-') ? name : `${name}.${Date.now()}@example.com`,
      })),
    },
  },
  // sheets runs batched (below): consecutive call-only rounds in one activity, flushed to the journal.
  batched: {
    code: `async () => { let n = 0; for (let i = 0; i < 12; i++) n += (await sheets.request({ method: 'GET', path: '/sheets' })).sheets.length; return n; }`,
  },
};

const env = await startDevServer({});
const crm = await startCrmApi();
const sheets = await startSheetsApi();
const dataDir = mkdtempSync(join(tmpdir(), 'dcm-record-'));
const config = parseConfig(
  {
    providers: {
      ...demoProvidersConfig({ crm, sheets }),
      crm: { ...demoProvidersConfig({ crm, sheets }).crm, approval: [{ match: ['DELETE /leads/*'] }] },
      sheets: { ...demoProvidersConfig({ crm, sheets }).sheets, durability: 'batched' },
    },
    dataDir,
    maxEventsPerRun: 200,
    temporal: { taskQueue: 'record-histories' },
  },
  undefined,
  { TEMPORAL_ADDRESS: env.address },
);
const connection = await connectWorker(config.temporal);
const worker = await startWorker(config, connection);
const client = await connectClient(config.temporal);
const jobs = new JobService(client, config);
mkdirSync(OUT, { recursive: true });

try {
  for (const [name, scenario] of Object.entries(SCRIPTS)) {
    crm.reset();
    crm.setLatency(scenario.crmLatencyMs ?? 0);
    const started = await jobs.execute({ code: scenario.code, input: scenario.input, waitSeconds: 0 });
    if (scenario.loseSessionAfterMs) {
      await new Promise((r) => setTimeout(r, scenario.loseSessionAfterMs));
      await worker.sessions.close();
    }
    if (scenario.cancelAfterLeads) {
      while (crm.stats().leads < scenario.cancelAfterLeads) await new Promise((r) => setTimeout(r, 5));
      await new Promise((r) => setTimeout(r, 100));
      await jobs.cancel(started.job_id);
    }
    if (scenario.cancelAfterMs) {
      await new Promise((r) => setTimeout(r, scenario.cancelAfterMs));
      await jobs.cancel(started.job_id);
    }
    for (const approved of scenario.answers ?? []) {
      while ((await jobs.status(started.job_id)).status !== 'waiting_for_approval')
        await new Promise((r) => setTimeout(r, 200));
      await jobs.answer(started.job_id, { approved, via: 'cli' });
    }
    let view = await jobs.status(started.job_id, 60);
    if (scenario.resumeWith) view = await jobs.resume(started.job_id, scenario.resumeWith, 60);
    if (view.status === 'running') throw new Error(`${name}: still running`);
    let run = 0;
    const runs = [];
    for await (const info of client.workflow.list({ query: `WorkflowId = '${started.job_id}'` })) runs.push(info);
    for (const info of runs.sort((a, b) => a.startTime.getTime() - b.startTime.getTime())) {
      const history = await client.workflow.getHandle(started.job_id, info.runId).fetchHistory();
      writeFileSync(new URL(`v${PRODUCT_VERSION}-${name}-run${++run}.json`, OUT), historyToJSON(history));
    }
    console.log(`${name}: ${view.status}, ${run} run(s) recorded`);
  }
} finally {
  await worker.shutdown();
  await connection.close();
  await client.connection.close();
  await crm.close();
  await sheets.close();
  await env.teardown();
  rmSync(dataDir, { recursive: true, force: true });
}
