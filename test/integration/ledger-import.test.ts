/**
 * The import ledger at the scale it is for (issue 15), with real worker processes and the demo APIs
 * as real HTTP servers: 100,000 sheet rows into the CRM through each(), in batches of 100, while
 * the CRM refuses 1% of the rows (422, a bad email) and fails 10% of its requests (503), and two
 * workers are SIGKILLed along the way. The refused rows, and only they, end up failed in the
 * ledger with their reasons; resumed with the rows fixed (once with a script that batches
 * differently, previewed first), only those rows reach the CRM, and no row is ever written twice.
 */
import type { Client } from '@temporalio/client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { LedgerEntry } from '../../core/ledger.ts';
import {
  demoProvidersConfig,
  startCrmApi,
  startSheetsApi,
  type CrmApi,
  type SheetsApi,
} from '../../demo-apis/index.ts';
import type { CrmWrite } from '../../demo-apis/crm.ts';
import { ledgerImportScript } from '../../demo-apis/lead-import.ts';
import { sheetRow, type SheetRow } from '../../demo-apis/sheets.ts';
import { FAILURES_PER_PAGE, JobService, JobStateError } from '../../jobs/service.ts';
import { exportLedger } from '../../ledger/export.ts';
import type { AttemptEntry } from '../../ledger/views.ts';
import {
  connectTestClient,
  eventually,
  finished,
  spawnWorker,
  testConfig,
  writeConfigFile,
  type ChildWorker,
} from '../harness.ts';

const ROWS = 100_000;
/** 1% of the rows, spread over the sheet and over the positions in a batch: served with a malformed email. */
const BAD = Array.from({ length: ROWS / 100 }, (_, k) => k * 100 + ((k * 37) % 100));
const SHEET = 'leads';
/** The CRM holds 30,000 and then 65,000 leads when a worker is killed. */
const KILL_AT = [30_000, 65_000];

const phoneOf = (index: number) => sheetRow(SHEET, index).phone;
const indexOfPhone = new Map(BAD.map((i) => [phoneOf(i), i]));
/** A failed row as the operator fixes it: the email it should have had. */
const fixed = (row: SheetRow): SheetRow => ({ ...row, email: sheetRow(SHEET, indexOfPhone.get(row.phone)!).email });

/** Every failed item of the job, read the way an operator pages them (the job tool's `failures`). */
async function pagedFailures(jobs: JobService, jobId: string): Promise<AttemptEntry[]> {
  const first = await jobs.failures(jobId, 1);
  const all = [...first.failures];
  for (let page = 2; page <= first.failures_pages; page++) all.push(...(await jobs.failures(jobId, page)).failures);
  expect(all).toHaveLength(first.failures_total);
  return all;
}

async function wholeLedger(jobs: JobService, jobId: string): Promise<LedgerEntry[]> {
  let json = '';
  for await (const chunk of exportLedger(await jobs.ledger(jobId), 'json', { failedOnly: false })) json += chunk;
  return JSON.parse(json) as LedgerEntry[];
}

/** How many times each email reached the CRM's handler in a write. */
function emailCounts(writes: CrmWrite[]): Map<string, number> {
  const counts = new Map<string, number>();
  for (const w of writes) for (const email of w.emails) counts.set(email, (counts.get(email) ?? 0) + 1);
  return counts;
}

describe('a 100,000-row import through each(), with refused rows, 503s and two killed workers', () => {
  let crm: CrmApi;
  let sheets: SheetsApi;
  let client: Client;
  let jobs: JobService;
  let jobId: string;
  const workers: ChildWorker[] = [];

  beforeAll(async () => {
    crm = await startCrmApi({ failureRate: 0.1, seed: 15 });
    sheets = await startSheetsApi({ sheets: { [SHEET]: ROWS }, malformedRows: { [SHEET]: BAD } });
    const config = testConfig({ providers: demoProvidersConfig({ crm, sheets }), limits: { memoryMb: 512 } });
    for (const provider of Object.values(config.providers))
      provider.retry = { maximumAttempts: 20, initialIntervalMs: 50, maximumIntervalMs: 1_000, backoffCoefficient: 2 };
    const configFile = writeConfigFile(config);
    workers.push(await spawnWorker(configFile));
    client = await connectTestClient(config);
    jobs = new JobService(client, config);

    const started = await jobs.execute({ code: ledgerImportScript(SHEET, { concurrency: 200 }), waitSeconds: 0 });
    jobId = started.job_id;
    for (const killAt of KILL_AT) {
      await eventually(() => (crm.stats().leads >= killAt ? true : undefined), 240_000, `${killAt} leads`);
      await workers.at(-1)!.kill('SIGKILL');
      workers.push(await spawnWorker(configFile));
    }
  }, 600_000);

  afterAll(async () => {
    await Promise.all(workers.map((w) => w.kill('SIGTERM')));
    await client?.connection.close();
    await crm?.close();
    await sheets?.close();
  });

  it('completes with exactly the refused rows failed in the ledger, each with its reason, and every other row written once', async () => {
    const view = await finished(jobs, jobId, 300_000);
    expect(view.status, JSON.stringify(view.error)).toBe('completed');
    expect(view.result).toEqual({
      done: ROWS - BAD.length,
      failed: BAD.length,
      uncertain: 0,
      skipped: 0,
      ledger: 'items',
    });
    expect(view.ledger?.counts.items).toMatchObject({ total: ROWS, done: ROWS - BAD.length, failed: BAD.length });

    const ledger = await wholeLedger(jobs, jobId);
    expect(ledger).toHaveLength(ROWS);
    expect(new Set(ledger.map((e) => e.key)).size).toBe(ROWS);
    const failed = ledger.filter((e) => e.status !== 'done');
    expect(failed.map((e) => e.index).sort((a, b) => a - b)).toEqual(BAD);
    for (const entry of failed) {
      expect(entry).toMatchObject({
        status: 'failed',
        key: phoneOf(entry.index),
        error: {
          status: 422,
          message: expect.stringContaining(`not a valid email address: "malformed-row-${entry.index}"`),
        },
        item: { ...sheetRow(SHEET, entry.index), email: `malformed-row-${entry.index}` },
      });
    }
    // A done row's value is the id of the lead the CRM created for it.
    const done = ledger.find((e) => e.index === 12_345)!;
    expect(done).toMatchObject({ status: 'done', value: expect.stringMatching(/^lead_\d+$/) });

    const stats = crm.stats();
    expect(stats.leads).toBe(ROWS - BAD.length);
    expect(stats.duplicateEmails).toBe(0);
    expect(stats.rejectedByFailureInjection).toBeGreaterThan(50);
    // 1,000 batches of 100 reached the CRM's handler, each once (a batch retried after a 503 or a
    // kill either never reached it or was answered from its Idempotency-Key), and every row in one.
    const writes = crm.writes();
    expect(writes).toHaveLength(ROWS / 100);
    expect(writes.every((w) => w.route === 'POST /leads/batch' && w.emails.length === 100)).toBe(true);
    const counts = emailCounts(writes);
    expect(counts.size).toBe(ROWS);
    expect([...counts.values()].every((n) => n === 1)).toBe(true);
    console.log(
      `[ledger-import] ${ROWS} rows: ${view.runs} runs, ${stats.rejectedByFailureInjection} injected 503s, ${stats.idempotentReplays} idempotent replays, uncertain_calls ${view.uncertain_calls ?? 0}`,
    );
  }, 360_000);

  it('resumed with a script that batches differently and half the rows fixed, sends only the failed rows', async () => {
    const before = crm.writes().length;
    const failures = await pagedFailures(jobs, jobId);
    expect(failures).toHaveLength(BAD.length);
    expect(failures.length / FAILURES_PER_PAGE).toBe(50);
    const half = failures.slice(0, BAD.length / 2).map((f) => fixed(f.item as SheetRow));

    const reshaped = ledgerImportScript(SHEET, { batchSize: 50, concurrency: 100 });
    // The dry run first: it reads the sheet again, writes nothing, and counts the items by key.
    const preview = await jobs.preview(jobId, reshaped, { fixes: half });
    expect(preview).toMatchObject({
      attempt: 2,
      each: [{ ledger: 'items', total: ROWS, skip: ROWS - BAD.length, retry: BAD.length, reconcile: 0, new: 0 }],
      reads_sent: 1,
    });
    expect(crm.writes()).toHaveLength(before);

    await jobs.resume(jobId, reshaped, 0, { fixes: half });
    const view = await finished(jobs, jobId, 180_000);
    expect(view.status, JSON.stringify(view.error)).toBe('completed');
    expect(view.attempt).toBe(2);
    expect(view.result).toEqual({
      done: half.length,
      failed: BAD.length - half.length,
      uncertain: 0,
      skipped: ROWS - BAD.length,
      ledger: 'items',
    });

    // As the preview said: the 99,000 done rows skipped, the 1,000 failed ones run again.
    const [plan] = preview.each;
    const result = view.result as { done: number; failed: number; skipped: number };
    expect([result.skipped, result.done + result.failed]).toEqual([plan.skip, plan.retry]);
    // The CRM saw the 1,000 failed rows again, 50 a batch: the fixed half as fixed, the rest as
    // they were (refused again), and none of the 99,000 done rows.
    const sent = crm.writes().slice(before);
    expect(sent).toHaveLength(BAD.length / 50);
    expect(sent.every((w) => w.emails.length === 50)).toBe(true);
    const fixedEmails = new Set(half.map((r) => r.email));
    const expected = BAD.map((i) =>
      fixedEmails.has(sheetRow(SHEET, i).email) ? sheetRow(SHEET, i).email : `malformed-row-${i}`,
    );
    expect(sent.flatMap((w) => w.emails).sort()).toEqual(expected.sort());
    expect(crm.stats()).toMatchObject({ leads: ROWS - BAD.length + half.length, duplicateEmails: 0 });
  }, 240_000);

  it('resumed with the remaining rows fixed, sends exactly those, and leaves every row in the CRM once', async () => {
    const before = crm.writes().length;
    const failures = await pagedFailures(jobs, jobId);
    expect(failures).toHaveLength(BAD.length / 2);
    expect(failures.every((f) => f.attempt === 2 && f.error?.status === 422)).toBe(true);
    const rest = failures.map((f) => fixed(f.item as SheetRow));

    await jobs.resume(jobId, undefined, 0, { fixes: rest });
    const view = await finished(jobs, jobId, 180_000);
    expect(view.status, JSON.stringify(view.error)).toBe('completed');
    expect(view.attempt).toBe(3);
    expect(view.result).toEqual({
      done: rest.length,
      failed: 0,
      uncertain: 0,
      skipped: ROWS - rest.length,
      ledger: 'items',
    });

    const sent = crm.writes().slice(before);
    expect(sent.flatMap((w) => w.emails).sort()).toEqual(rest.map((r) => r.email).sort());
    expect(sent.every((w) => w.status === 201)).toBe(true);

    // Every row of the sheet is in the CRM once, with its own email, and no write of a done row
    // was ever repeated: each good email reached the handler exactly once over the three attempts.
    const stats = crm.stats();
    expect(stats.leads).toBe(ROWS);
    expect(stats.duplicateEmails).toBe(0);
    const counts = emailCounts(crm.writes());
    const notOnce = Array.from({ length: ROWS }, (_, i) => sheetRow(SHEET, i).email).filter((e) => counts.get(e) !== 1);
    expect(notOnce).toEqual([]);
    const ledger = await wholeLedger(jobs, jobId);
    expect(ledger.filter((e) => e.status === 'done')).toHaveLength(ROWS);
    await expect(jobs.resume(jobId)).rejects.toThrow(JobStateError);
  }, 240_000);
});
