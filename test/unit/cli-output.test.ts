/** What the CLI prints for people: job tables and pages, the live watch line, the worker's log lines. */
import { describe, expect, it } from 'vitest';
import { bar, duration, jobPage, jobTable, ProgressRate, progressText, watchLine } from '../../cli/jobs-render.ts';
import { conciseEntry } from '../../cli/worker-logging.ts';
import type { JobRow, JobView } from '../../jobs/service.ts';

const row = (over: Partial<JobRow> = {}): JobRow => ({
  job_id: 'import-leads-7k2m9q4x',
  summary: 'import the leads sheet into the CRM',
  owner: 'alice',
  status: 'running',
  phase: 'running',
  progress: { done: 75, total: 250, message: 'importing' },
  attempt: 1,
  started: '2026-11-30T06:00:00.000Z',
  closed: null,
  seconds: 754,
  ...over,
});

const view = (over: Partial<JobView> = {}): JobView => ({
  job_id: 'import-leads-7k2m9q4x',
  status: 'running',
  progress: { done: 75, total: 250, message: 'importing' },
  logs: [],
  log_count: 0,
  ...over,
});

describe('job output for people', () => {
  it('says durations and progress the short way', () => {
    expect([5, 65, 754, 3 * 3600 + 125, 2 * 86_400 + 4 * 3600].map(duration)).toEqual([
      '5s',
      '1m 05s',
      '12m 34s',
      '3h 02m',
      '2d 4h',
    ]);
    expect(progressText({ done: 75, total: 250, message: null })).toBe('75/250 (30%)');
    expect(progressText({ done: 75, total: null, message: null })).toBe('75');
    expect(progressText(null)).toBe('-');
    expect(bar(75, 250, 10)).toBe('[###.......]');
    expect(bar(300, 250, 4)).toBe('[####]');
  });

  it('lists one row per job under a header, the summary cut to the width', () => {
    const table = jobTable(
      [row(), row({ job_id: 'tidy-up-abcdefgh', owner: 'bob', status: 'failed', progress: null, attempt: 2 })],
      110,
    );
    const [head, first, second] = table.split('\n');
    expect(head).toMatch(/^JOB ID\s+STATUS\s+PROGRESS\s+ATTEMPT\s+OWNER\s+STARTED\s+DURATION\s+SUMMARY$/);
    expect(first).toMatch(
      /^import-leads-7k2m9q4x\s+running\s+75\/250 \(30%\)\s+1\s+alice\s+\d{4}-\d\d-\d\d \d\d:\d\d\s+12m 34s\s+import the/,
    );
    expect(first.length).toBeLessThanOrEqual(110);
    expect(first.endsWith('…')).toBe(true);
    expect(second).toMatch(/^tidy-up-abcdefgh\s+failed\s+-\s+2\s+bob\s/);
    expect(jobTable([])).toBe('No jobs.');
  });

  it("shows a job's page with its error, logs and what to read next", () => {
    const page = jobPage(
      {
        job_id: 'import-leads-7k2m9q4x',
        summary: 'import leads',
        owner: 'alice',
        status: 'failed',
        started: '2026-11-30T06:00:00.000Z',
        closed: '2026-11-30T06:01:05.000Z',
      },
      view({
        status: 'failed',
        attempt: 2,
        rounds: 3,
        effects: 7,
        runs: 1,
        error: { name: 'ApiError', message: '422 from POST /leads', stack: 'ApiError: 422\n    at script.js:4:11' },
        logs: ['row 9', 'row 10'],
        log_count: 10,
      }),
    );
    expect(page).toBe(
      [
        'import-leads-7k2m9q4x  failed (attempt 2)',
        '  summary   import leads',
        '  owner     alice',
        `  started   ${page.split('\n')[3].slice(12, 28)}, ran 1m 05s`,
        '  progress  [#######.................] 75/250 (30%)  importing',
        '  work      3 rounds, 7 calls and sleeps, 1 workflow run',
        '  error     ApiError: 422 from POST /leads',
        '            ApiError: 422',
        '                at script.js:4:11',
        '  logs      (last 2 of 10 lines)',
        '            row 9',
        '            row 10',
      ].join('\n'),
    );
  });

  it("shows an each()'s item counts and first failures, and where to read them all", () => {
    const page = jobPage(
      {
        job_id: 'import-leads-7k2m9q4x',
        summary: 'import leads',
        owner: 'alice',
        status: 'completed',
        started: '2026-11-30T06:00:00.000Z',
        closed: '2026-11-30T06:01:05.000Z',
      },
      view({
        status: 'completed',
        progress: null,
        attempt: 2,
        ledger: {
          counts: { items: { total: 250, done: 3, failed: 1, uncertain: 0, skipped: 246 } },
          firstFailures: [
            {
              ledger: 'items',
              key: 'Lead 7',
              index: 7,
              status: 'failed',
              error: { name: 'ApiError', status: 422, message: 'invalid_email' },
            },
          ],
        },
      }),
    );
    expect(page.split('\n').slice(4)).toEqual([
      '  items     items: 3 done, 1 failed, 246 skipped (done before) of 250',
      '  failures  items Lead 7: ApiError: invalid_email',
      '            (all of them: durable-codemode jobs ledger import-leads-7k2m9q4x --failed)',
    ]);
  });

  it('draws the watch line with the rate and the time left once it can measure them', () => {
    const rate = new ProgressRate();
    rate.add(50, 0);
    expect(rate.perSecond()).toBeUndefined();
    rate.add(75, 2000);
    expect(rate.perSecond()).toBe(12.5);
    expect(watchLine(view(), rate.perSecond())).toBe(
      'running  [#######.................]  75/250 (30%)  12.5/s  ETA 14s  importing',
    );
    expect(watchLine(view({ progress: null }), undefined)).toBe('running  (no progress reported yet)');
    rate.add(3, 2500); // a resumed attempt starts over
    expect(rate.perSecond()).toBeUndefined();
  });
});

describe("the worker's log", () => {
  it('says a failed job or activity attempt in one line', () => {
    const error = Object.assign(
      new Error('ReferenceError: sheets is not defined (script line 2, column 3)\n    at x'),
      {
        name: 'ApplicationFailure',
      },
    );
    expect(conciseEntry({ message: 'Workflow failed', meta: { workflowId: 'import-leads-1', error } })).toBe(
      'job import-leads-1 failed: ReferenceError: sheets is not defined (script line 2, column 3)',
    );
    expect(
      conciseEntry({
        message: 'Activity failed',
        meta: { workflowId: 'j', activityType: 'callProvider', attempt: 3, error: new Error('503 from GET /leads') },
      }),
    ).toBe('job j: callProvider attempt 3 failed: 503 from GET /leads');
    expect(conciseEntry({ message: 'No workflows registered, not polling for workflow tasks' })).toBeNull();
    expect(conciseEntry({ message: 'Worker state changed', meta: {} })).toBeUndefined();
  });
});
