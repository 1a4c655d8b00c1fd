/**
 * job_resume's dry run (issue 15) on a real worker against the demo CRM: the preview counts the
 * each() items a resume would skip, retry and run new, and names the journal's rounds that replay
 * and where the script diverges, while the CRM's request log shows no write; the resume then does
 * exactly what the preview said.
 */
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Client as McpClient } from '@modelcontextprotocol/sdk/client/index.js';
import { InMemoryTransport } from '@modelcontextprotocol/sdk/inMemory.js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createBlobStore } from '../../blobs/index.ts';
import type { CrmApi } from '../../demo-apis/crm.ts';
import type { JobService, ResumePreviewView } from '../../jobs/service.ts';
import { Privacy } from '../../privacy/privacy.ts';
import { SpecSearch } from '../../sandbox/search.ts';
import { createMcpServer } from '../../server/mcp.ts';
import { resultBudget, startCrmStack, testConfig, type CrmStack } from '../harness.ts';

interface Row {
  name: string;
  email: string;
}

/** `count` rows named `prefix N`; the rows in `bad` have an email the CRM refuses with 422. */
const rows = (prefix: string, count: number, bad: number[] = []): Row[] =>
  Array.from({ length: count }, (_, i) => ({
    name: `${prefix} ${i}`,
    email: bad.includes(i) ? `${prefix} ${i} at example` : `${prefix.toLowerCase()}${i}@example.com`,
  }));

/** An import that reads the CRM first (a GET), then posts every row through each(), keyed by name. */
const importScript = (options = '') => `async () => {
  await crm.request({ method: 'GET', path: '/leads', query: { limit: 1 } });
  return each(input, async (row) => (await crm.request({ method: 'POST', path: '/leads', body: row })).id,
    { key: (row) => row.name, concurrency: 5${options} });
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

describe('job_resume dry run', () => {
  it('counts the items a resume of a completed job skips, retries and runs new, writes nothing, and the resume does that', async () => {
    const BAD = [3, 17, 28];
    const first = await jobs.execute({ code: importScript(), input: rows('Lead', 30, BAD), waitSeconds: 60 });
    expect(first.status, JSON.stringify(first.error)).toBe('completed');
    expect(first.result).toMatchObject({ done: 27, failed: 3 });

    // Corrected: the refused rows fixed, and 5 rows more.
    const corrected = rows('Lead', 35);
    const writes = crm.writes().length;
    const requests = crm.stats().requests;
    const preview = await jobs.preview(first.job_id, undefined, corrected);
    expect(preview).toEqual<ResumePreviewView>({
      job_id: first.job_id,
      attempt: 2,
      // A completed job keeps no journal: its next attempt runs from the start.
      journal_rounds: 0,
      replay_rounds: 0,
      divergence: null,
      live: [{ round: 1, calls: ['crm: GET /leads'], sent: true }],
      each: [{ ledger: 'items', total: 35, skip: 27, retry: 3, reconcile: 0, new: 5 }],
      reads_sent: 1,
      note: expect.stringMatching(/^A preview: nothing was written; 1 read\(s\) \(GET, HEAD\) were sent/),
    });
    // The CRM saw the one read and no write; the job is as it was.
    expect(crm.writes().length).toBe(writes);
    expect(crm.stats().requests).toBe(requests + 1);
    expect(await jobs.status(first.job_id)).toMatchObject({ status: 'completed', attempt: 1 });

    // The operator's way: the corrected input as a file, readable or as JSON.
    const dir = mkdtempSync(join(tmpdir(), 'dcm-preview-'));
    writeFileSync(join(dir, 'fixed.json'), JSON.stringify(corrected));
    const readable = (await cli(['jobs', 'resume', first.job_id, '--input', join(dir, 'fixed.json'), '--dry-run']))
      .stdout;
    expect(readable).toContain(`${first.job_id}  preview of attempt 2`);
    expect(readable).toContain('items: 27 skipped (done before), 3 retried, 5 new, of 35');
    expect(readable).toContain('without --dry-run');
    const json = await cli(['jobs', 'resume', first.job_id, '--input', join(dir, 'fixed.json'), '--dry-run', '--json']);
    expect((JSON.parse(json.stdout) as ResumePreviewView).each).toEqual(preview.each);
    expect(crm.writes().length).toBe(writes);

    // The resume does what the preview said: 3 retried + 5 new sent, 27 skipped.
    const resumed = await jobs.resume(first.job_id, undefined, 60, corrected);
    expect(resumed.status, JSON.stringify(resumed.error)).toBe('completed');
    expect(resumed.result).toEqual({ done: 8, failed: 0, uncertain: 0, skipped: 27, ledger: 'items' });
    const sent = crm.writes().slice(writes);
    expect(sent).toHaveLength(preview.each[0].retry + preview.each[0].new);
    expect(sent.map((w) => w.emails[0]).sort()).toEqual(
      [...BAD, 30, 31, 32, 33, 34].map((i) => `lead${i}@example.com`).sort(),
    );
    expect(crm.stats().duplicateEmails).toBe(0);
  });

  it('replays the journal of a failed job as far as the script agrees, and says where a corrected script diverges', async () => {
    const input = rows('Again', 20, [9]);
    const failed = await jobs.execute({ code: importScript(', maxFailures: 0'), input, waitSeconds: 60 });
    expect(failed.status).toBe('failed');
    expect(failed.error?.name).toBe('TooManyFailuresError');
    const done = failed.ledger!.counts.items.done;
    const failures = failed.ledger!.counts.items.failed + failed.ledger!.counts.items.uncertain;
    const writes = crm.writes().length;

    // The same script with the rows fixed: round 1 (the GET) replays, each() starts in round 2.
    const fixed = rows('Again', 20);
    const same = await jobs.preview(failed.job_id, undefined, fixed);
    expect(same.journal_rounds).toBeGreaterThan(1);
    expect(same).toMatchObject({
      replay_rounds: 1,
      divergence: 'round 2: each("items") starts here; its items run live',
      live: [],
      each: [{ ledger: 'items', total: 20, skip: done, retry: failures, reconcile: 0, new: 20 - done - failures }],
      reads_sent: 0,
    });
    expect(same.ended).toBeUndefined();

    // A script that now writes first: the preview stops at that round and names its call, unsent.
    const reshaped = importScript(', maxFailures: 0').replace(
      "await crm.request({ method: 'GET', path: '/leads', query: { limit: 1 } });",
      "await crm.request({ method: 'POST', path: '/leads', body: { name: 'Marker', email: 'marker@example.com' } });",
    );
    const diverged = await jobs.preview(failed.job_id, reshaped, fixed);
    expect(diverged).toMatchObject({
      replay_rounds: 0,
      divergence:
        'round 1, call 1: the journal has crm: GET /leads but the script now asks for crm: POST /leads; the new code runs live from here',
      live: [{ round: 1, calls: ['crm: POST /leads'], sent: false }],
      each: [],
      reads_sent: 0,
    });
    expect(crm.writes().length).toBe(writes);

    // The job is still resumable as before; the resume does what the first preview said.
    const resumed = await jobs.resume(failed.job_id, undefined, 60, fixed);
    expect(resumed.status, JSON.stringify(resumed.error)).toBe('completed');
    expect(resumed.result).toMatchObject({ skipped: same.each[0].skip, done: same.each[0].retry + same.each[0].new });
    expect(crm.writes().slice(writes)).toHaveLength(same.each[0].retry + same.each[0].new);
    expect(crm.stats().duplicateEmails).toBe(0);
  });

  it('refuses to preview a job that is not resumable, like job_resume', async () => {
    const view = await jobs.execute({ code: 'async () => 1', waitSeconds: 60 });
    expect(view.status).toBe('completed');
    await expect(jobs.preview(view.job_id)).rejects.toThrow(/nothing to resume/);
  });
});

describe('job_resume dry run over MCP', () => {
  it("answers the preview as structured content, with the caller's tokens when privacy is on", async () => {
    const first = await jobs.execute({ code: importScript(), input: rows('Mcp', 4, [1]), waitSeconds: 60 });
    expect(first.result).toMatchObject({ done: 3, failed: 1 });
    const { config } = stack;
    const search = await SpecSearch.create([]);
    const privacy = new Privacy(testConfig({ privacy: { enabled: true } }).privacy, {
      store: createBlobStore(config.blobs, config.dataDir),
    });
    const server = createMcpServer({
      jobs,
      budget: resultBudget(config),
      search,
      providers: ['crm'],
      defaultWaitSeconds: 30,
      privacy,
    });
    const client = new McpClient({ name: 'preview-test', version: '0' });
    const [clientSide, serverSide] = InMemoryTransport.createLinkedPair();
    await Promise.all([server.connect(serverSide), client.connect(clientSide)]);
    try {
      const writes = crm.writes().length;
      const fixed = rows('Mcp', 4);
      const answer = await client.callTool({
        name: 'job_resume',
        arguments: { job_id: first.job_id, input: fixed, dry_run: true },
      });
      expect(answer.isError).toBeFalsy();
      expect(answer.structuredContent).toMatchObject({
        job_id: first.job_id,
        each: [{ ledger: 'items', total: 4, skip: 3, retry: 1, reconcile: 0, new: 0 }],
        reads_sent: 1,
      });
      // A script that stops before each() with a row's email in its error: the model sees a token.
      const throwing = `async () => { throw new Error('row ' + input[1].email + ' is still wrong'); }`;
      const ended = await client.callTool({
        name: 'job_resume',
        arguments: { job_id: first.job_id, code: throwing, input: fixed, dry_run: true },
      });
      const text = JSON.stringify(ended);
      expect(text).not.toContain(fixed[1].email);
      expect(ended.structuredContent).toMatchObject({
        each: [],
        ended: { name: 'Error', message: expect.stringMatching(/^row \[[A-Z]+_\d+\] is still wrong$/) },
      });
      expect(crm.writes().length).toBe(writes);
      expect(await jobs.status(first.job_id)).toMatchObject({ status: 'completed', attempt: 1 });
    } finally {
      await client.close();
      await server.close();
      search.dispose();
    }
  });
});
