/**
 * The import ledger on a real worker (issue 15): each() rows the CRM refuses are listed with their
 * reasons (the job tool's status, the failures pages, `durable-codemode jobs ledger`), and a resume with the
 * fixed rows and a reshaped script sends only those rows: the CRM's own request log shows it.
 */
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { LedgerCounts, LedgerEntry } from '../../core/ledger.ts';
import type { CrmApi } from '../../demo-apis/crm.ts';
import { FAILURES_PER_PAGE, type JobService, JobStateError, type JobView } from '../../jobs/service.ts';
import { startCrmStack, type CrmStack } from '../harness.ts';

const ROWS = 60;
/** Rows whose email the CRM refuses with 422. */
const BAD = new Set([7, 30, 51]);

interface Row {
  name: string;
  email: string;
}

const rows = (fixed: boolean): Row[] =>
  Array.from({ length: ROWS }, (_, i) => ({
    name: `Lead ${i}`,
    email: BAD.has(i) && !fixed ? `lead ${i} at example` : `lead${i}@example.com`,
  }));

/** The import as an agent writes it: one POST per row, keyed by name, `concurrency` rows at a time. */
const importScript = (concurrency: number) => `async () => {
  const summary = await each(input, async (row) => {
    const lead = await crm.request({ method: 'POST', path: '/leads', body: row });
    return lead.id;
  }, { key: (row) => row.name, concurrency: ${concurrency} });
  return summary;
}`;

let crm: CrmApi;
let stack: CrmStack;
let jobs: JobService;

beforeAll(async () => {
  stack = await startCrmStack();
  ({ crm, jobs } = stack);
});

afterAll(() => stack?.close());

const cli = (args: string[]) => stack.cli(args);

describe('each() and the ledger', () => {
  let jobId: string;

  it('completes with the refused rows as failed items, each with its reason, in the job tool status', async () => {
    const view = await jobs.execute({ code: importScript(10), input: rows(false), waitSeconds: 60 });
    jobId = view.job_id;
    expect(view.status, JSON.stringify(view.error)).toBe('completed');
    expect(view.result).toEqual({ done: ROWS - BAD.size, failed: BAD.size, uncertain: 0, skipped: 0, ledger: 'items' });
    expect(view.ledger?.counts.items).toEqual<LedgerCounts>({
      total: ROWS,
      done: ROWS - BAD.size,
      failed: BAD.size,
      uncertain: 0,
      skipped: 0,
    });
    const first = view.ledger!.firstFailures;
    expect(first.map((f) => f.key).sort()).toEqual([...BAD].map((i) => `Lead ${i}`).sort());
    for (const f of first) {
      expect(f).toMatchObject({ status: 'failed', error: { status: 422 }, item: rows(false)[f.index] });
      expect(f.error!.message).toMatch(/email/i);
    }
    expect(crm.writes().filter((w) => w.status === 201)).toHaveLength(ROWS - BAD.size);
  });

  it('pages the failures and refuses a page past the last', async () => {
    const page = await jobs.failures(jobId, 1);
    expect(page).toMatchObject({ failures_page: 1, failures_pages: 1, failures_total: BAD.size });
    expect(page.failures.map((f) => f.index).sort((a, b) => a - b)).toEqual([...BAD]);
    expect(FAILURES_PER_PAGE).toBeGreaterThanOrEqual(BAD.size);
    await expect(jobs.failures(jobId, 2)).rejects.toThrow(/3 failed items in 1 page: ask for failures page 1, not 2/);
  });

  it('exports the ledger from the CLI: every item as CSV, the failed ones as JSON', async () => {
    const csv = (await cli(['jobs', 'ledger', jobId])).stdout.trimEnd().split('\r\n');
    expect(csv[0]).toBe('attempt,ledger,key,index,status,error,http_status,message,reconciled,value,name,email');
    expect(csv).toHaveLength(ROWS + 1);
    expect(csv.filter((l) => l.includes(',failed,'))).toHaveLength(BAD.size);
    const failed = JSON.parse((await cli(['jobs', 'ledger', jobId, '--failed', '--format', 'json'])).stdout) as Array<
      LedgerEntry & { attempt: number }
    >;
    expect(failed.map((f) => f.item)).toEqual([...BAD].map((i) => rows(false)[i]));
    expect(failed.every((f) => f.attempt === 1 && f.error?.status === 422)).toBe(true);
    await expect(cli(['jobs', 'ledger', jobId, '--format', 'xml'])).rejects.toThrow(
      /--format must be one of csv, json/,
    );
  });

  it('resumes the completed job with the fixed rows and a reshaped script, sending only the failed rows', async () => {
    const before = crm.writes().length;
    // As an operator does it: the fixed rows and the reshaped script as files, through the CLI.
    const dir = mkdtempSync(join(tmpdir(), 'dcm-fix-'));
    writeFileSync(join(dir, 'fixed.json'), JSON.stringify(rows(true)));
    writeFileSync(join(dir, 'import.js'), importScript(4));
    const resumed = await cli([
      'jobs',
      'resume',
      jobId,
      '--code',
      join(dir, 'import.js'),
      '--input',
      join(dir, 'fixed.json'),
      '--wait',
      '60',
      '--json',
    ]);
    const view = JSON.parse(resumed.stdout) as JobView;
    expect(view.status, JSON.stringify(view.error)).toBe('completed');
    expect(view.attempt).toBe(2);
    expect(view.result).toEqual({ done: BAD.size, failed: 0, uncertain: 0, skipped: ROWS - BAD.size, ledger: 'items' });
    const sent = crm.writes().slice(before);
    expect(sent.map((w) => w.emails[0]).sort()).toEqual([...BAD].map((i) => `lead${i}@example.com`).sort());
    expect(sent.every((w) => w.status === 201)).toBe(true);
    const stats = crm.stats();
    expect(stats.leads).toBe(ROWS);
    expect(stats.duplicateEmails).toBe(0);

    // Every item is done now: the ledger's latest entries say so, and there is nothing left to resume.
    const csv = (await cli(['jobs', 'ledger', jobId, '--failed'])).stdout.trimEnd().split('\r\n');
    expect(csv).toHaveLength(1);
    await expect(jobs.resume(jobId)).rejects.toThrow(JobStateError);
  });
});

describe('a failed each() job resumed from its journal', () => {
  it('stops at maxFailures, then resumes from its journal with the fixed rows, sending no done row again', async () => {
    // Other names and emails than the first import's, so the CRM's duplicate count is this job's alone.
    const again = (r: Row): Row => ({ name: `Again ${r.name}`, email: r.email.replace('lead', 'again') });
    const input = rows(false).slice(0, 40).map(again);
    const code = importScript(5).replace('concurrency: 5 }', 'concurrency: 5, maxFailures: 0 }');
    const failed = await jobs.execute({ code, input, waitSeconds: 60 });
    expect(failed.status).toBe('failed');
    expect(failed.error).toMatchObject({ name: 'TooManyFailuresError', message: expect.stringContaining('Lead 7') });
    const before = crm.writes().length;
    const doneBefore = failed.ledger!.counts.items.done;
    expect(doneBefore).toBeGreaterThan(0);
    expect(doneBefore).toBeLessThan(39);

    const fixed = rows(true).slice(0, 40).map(again);
    const view = await jobs.resume(failed.job_id, undefined, 60, fixed);
    expect(view.status, JSON.stringify(view.error)).toBe('completed');
    expect(view.result).toMatchObject({ failed: 0, skipped: doneBefore, done: 40 - doneBefore });
    const sent = crm.writes().slice(before);
    expect(sent).toHaveLength(40 - doneBefore);
    expect(new Set(sent.map((w) => w.emails[0])).size).toBe(40 - doneBefore);
    expect(crm.stats().duplicateEmails).toBe(0);
  });
});
