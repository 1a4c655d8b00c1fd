/**
 * Answers within a token budget: search results cut into still-valid JSON with a marker, job
 * results over the budget stored in the blob store and read back page by page.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { LocalBlobStore } from '../../blobs/local-store.ts';
import { countTokens, fitJson, jsonText, pageStarts, ResultBudget } from '../../server/budget.ts';
import type { JobView } from '../../jobs/service.ts';

const MARKER = /^…\[cut: [\d,]+ of [\d,]+ tokens omitted; (.*)\]$/;

const leads = (n: number) =>
  Array.from({ length: n }, (_, i) => ({
    id: `lead_${i}`,
    name: `Lead Number ${i}`,
    email: `lead${i}@example.com`,
    score: i % 97,
  }));

let tmp: string;
beforeAll(() => {
  tmp = mkdtempSync(join(tmpdir(), 'dcm-budget-'));
});
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

describe('countTokens', () => {
  it('counts o200k_base tokens, special-token text included', () => {
    expect(countTokens('hello world')).toBe(2);
    expect(countTokens('<|endoftext|>')).toBeGreaterThan(1);
  });
});

describe('fitJson', () => {
  it('leaves a value that fits alone', () => {
    expect(fitJson(leads(3), 1000, 'narrow it')).toEqual({ value: leads(3) });
  });

  it('shortens arrays with a marker entry, keeping the first items whole', () => {
    const { value, cut } = fitJson(leads(5000), 1000, 'filter more narrowly');
    const list = value as unknown[];
    expect(countTokens(jsonText(value)) + countTokens(cut!)).toBeLessThanOrEqual(1000);
    expect(list.slice(0, -1)).toEqual(leads(list.length - 1));
    expect(list.length).toBeGreaterThan(10);
    expect(list.at(-1)).toBe(`…[${5000 - (list.length - 1)} more items]`);
    expect(cut).toMatch(MARKER);
    expect(MARKER.exec(cut!)![1]).toBe('filter more narrowly');
    const [omitted, total] = cut!.match(/[\d,]+/g)!.map((n) => Number(n.replace(/,/g, '')));
    expect(total).toBe(countTokens(jsonText(leads(5000))));
    expect(omitted).toBe(total - countTokens(jsonText(value)));
  });

  it('cuts long strings and wide objects, and the JSON text as a last resort', () => {
    const long = fitJson({ text: 'word '.repeat(20_000) }, 300, 'return less');
    expect((long.value as { text: string }).text).toMatch(/^(word )+w?o?r?d?…\[\d+ more chars\]$/);
    expect(countTokens(jsonText(long.value))).toBeLessThanOrEqual(300);

    const wide = fitJson(Object.fromEntries(leads(2000).map((l) => [l.id, l.email])), 500, 'return less');
    const keys = Object.keys(wide.value as object);
    expect(keys[0]).toBe('lead_0');
    expect((wide.value as Record<string, string>)['…']).toMatch(/^\[\d+ more keys\]$/);

    let deep: unknown = 'x'.repeat(2000);
    for (let i = 0; i < 3000; i++) deep = [deep];
    expect(JSON.stringify(fitJson(deep, 200, 'return less').value)).toMatch(/^(\[){64}"…\[nested too deep\]"(\]){64}$/);

    const text = fitJson({ ['key'.repeat(10_000)]: 1 }, 200, 'return less');
    expect(text.value as string).toMatch(/^\{"(key)+…$/);
    expect(countTokens(jsonText(text.value))).toBeLessThanOrEqual(200);
  });
});

describe('pageStarts', () => {
  it('cuts text into pages that fit as JSON strings and join back to the text, surrogate pairs intact', () => {
    const text = jsonText({ rows: leads(3000), notes: 'é😀 "quoted" \\ '.repeat(2000) });
    const starts = pageStarts(text, 1000);
    const pages = starts.map((s, i) => text.slice(s, starts[i + 1] ?? text.length));
    expect(pages.join('')).toBe(text);
    for (const page of pages) {
      expect(countTokens(jsonText(page))).toBeLessThanOrEqual(1000);
      expect(page).not.toMatch(/^[\udc00-\udfff]|[\ud800-\udbff]$/);
    }
    // Pages are filled, not just safe: on average well above half a page.
    expect(countTokens(jsonText(text)) / pages.length).toBeGreaterThan(700);
  });
});

describe('ResultBudget', () => {
  const view = (result: unknown, logs: string[] = ['started']): JobView => ({
    job_id: 'job-1',
    status: 'completed',
    progress: null,
    result,
    logs,
    log_count: logs.length,
  });
  let budget: ResultBudget;
  let blobs: LocalBlobStore;
  beforeAll(() => {
    blobs = new LocalBlobStore(join(tmp, 'blobs'));
    budget = new ResultBudget(2000, blobs);
  });

  it('answers a search result within the budget, with the marker next to it', () => {
    expect(budget.search([1, 2])).toEqual({ result: [1, 2] });
    const answer = budget.search(leads(1000));
    expect(answer.cut).toMatch(/return fewer fields or filter more narrowly\]$/);
    expect(countTokens(jsonText(answer))).toBeLessThanOrEqual(2000);
  });

  it('keeps a job answer that fits as it is', async () => {
    expect(await budget.job(view({ created: 5 }))).toEqual(view({ created: 5 }));
  });

  it('stores a result over the budget and answers a reference, a preview and pages', async () => {
    const result = { created: 4000, leads: leads(4000) };
    const answer = await budget.job(view(result));
    expect(countTokens(jsonText(answer))).toBeLessThanOrEqual(2000);
    expect(answer.result).toBeUndefined();
    expect(answer.result_ref).toMatch(/^sha256-[0-9a-f]{64}$/);
    expect(
      JSON.parse((await blobs.get({ blob: answer.result_ref!, bytes: jsonText(result).length })).toString()),
    ).toEqual(result);
    expect(answer.result_preview).toMatchObject({ created: 4000, leads: expect.arrayContaining([leads(1)[0]]) });
    expect(answer.cut).toMatch(MARKER);
    expect(answer.cut).toContain(`job({ job_id, page }) for page 1 to ${answer.result_pages}`);

    const pages = [];
    for (let page = 1; page <= answer.result_pages!; page++) {
      const read = await budget.page(view(result), page);
      expect(read).toMatchObject({
        job_id: 'job-1',
        status: 'completed',
        result_ref: answer.result_ref,
        page,
        result_pages: answer.result_pages,
      });
      expect(countTokens(jsonText(read))).toBeLessThanOrEqual(2000);
      pages.push(read.result_page);
    }
    expect(JSON.parse(pages.join(''))).toEqual(result);
    await expect(budget.page(view(result), answer.result_pages! + 1)).rejects.toThrow(
      `has ${answer.result_pages} pages: ask for page 1 to ${answer.result_pages}, not ${answer.result_pages! + 1}.`,
    );
    await expect(budget.page(view(result), 1.5)).rejects.toThrow('not 1.5');
    await expect(budget.page({ ...view(undefined), status: 'running' }, 1)).rejects.toThrow(
      "Job job-1 is running: only a completed job's result has pages",
    );
  });

  it('shortens long logs to their latest lines', async () => {
    const logs = Array.from({ length: 50 }, (_, i) => `line ${i}: ${'detail '.repeat(40)}`);
    const answer = await budget.job(view({ ok: true }, logs));
    expect(answer.result).toEqual({ ok: true });
    expect(answer.logs.at(-1)).toBe(logs.at(-1));
    expect(answer.logs[0]).toMatch(/^…\[\d+ more items\]$/);
    expect(countTokens(jsonText(answer))).toBeLessThanOrEqual(2000);
  });
});
