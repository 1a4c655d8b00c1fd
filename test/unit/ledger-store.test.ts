/**
 * The ledger in the blob store (ledger/): segments and the per-attempt index, merging, a round
 * written twice (an activity retried after a crash) or late (a stale attempt), paged failures,
 * the view across attempts and what a resumed attempt is told; and a million entries.
 */
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { LocalBlobStore } from '../../blobs/local-store.ts';
import type { LedgerCounts, LedgerEntry, LedgerReport } from '../../core/ledger.ts';
import { exportLedger } from '../../ledger/export.ts';
import { LedgerStore } from '../../ledger/store.ts';
import { JobLedger } from '../../ledger/views.ts';

const blobStore = () => new LocalBlobStore(join(mkdtempSync(join(tmpdir(), 'dcm-ledger-')), 'blobs'));

/** Entry of item `index`: every `failEvery`th fails with a 422. */
function entry(index: number, failEvery = 0): LedgerEntry {
  const key = `lead${index}@example.com`;
  if (failEvery && index % failEvery === 0)
    return {
      ledger: 'items',
      key,
      index,
      status: 'failed',
      error: { name: 'ApiError', status: 422, message: 'email: Invalid email address' },
      item: { email: key },
    };
  return { ledger: 'items', key, index, status: 'done', value: `lead_${index}` };
}

/** Writes `rounds` rounds of `perRound` entries; returns everything written, in order. */
async function writeRounds(
  ledger: LedgerStore,
  job: string,
  attempt: number,
  rounds: number,
  perRound: number,
  failEvery = 0,
) {
  const all: LedgerEntry[] = [];
  const count: LedgerCounts = { total: rounds * perRound, done: 0, failed: 0, uncertain: 0, skipped: 0 };
  for (let r = 0; r < rounds; r++) {
    const entries = Array.from({ length: perRound }, (_, i) => entry(r * perRound + i, failEvery));
    for (const e of entries) {
      all.push(e);
      count[e.status]++;
    }
    await ledger.append(job, attempt, r, { entries, counts: { items: { ...count } } });
  }
  return all;
}

async function readAll(ledger: LedgerStore, job: string, attempt: number): Promise<LedgerEntry[]> {
  const index = await ledger.index(job, attempt);
  const out: LedgerEntry[] = [];
  for await (const batch of ledger.entries(index!)) out.push(...batch);
  return out;
}

describe('the ledger store', () => {
  it('keeps every entry in order, merging segments so the index stays small', async () => {
    const ledger = new LedgerStore(blobStore());
    const written = await writeRounds(ledger, 'job-a', 1, 300, 7, 10);
    expect(await readAll(ledger, 'job-a', 1)).toEqual(written);
    const index = (await ledger.index('job-a', 1))!;
    // 299 sealed rounds = 1 segment of level 2 (256 rounds) + 2 of level 1 + 11 of level 0, plus the tail.
    expect(index.segments.map((s) => s.level)).toEqual([2, 1, 1, ...Array<number>(11).fill(0)]);
    expect(index.segments[0].entries).toBe(256 * 7);
    expect(index.round).toBe(299);
    expect(index.counts.items).toEqual({ total: 2100, done: 1890, failed: 210, uncertain: 0, skipped: 0 });
    expect(index.firstFailures.map((f) => f.index)).toEqual([0, 10, 20, 30, 40]);
  });

  it('writes a round again in place of its first writing, and ignores a round older than the index', async () => {
    const ledger = new LedgerStore(blobStore());
    const report = (indexes: number[], status: LedgerEntry['status'] = 'done'): LedgerReport => ({
      entries: indexes.map((i) => ({ ...entry(i), status })),
      counts: {},
    });
    await ledger.append('job-b', 1, 0, report([0, 1]));
    await ledger.append('job-b', 1, 1, report([2, 3], 'failed'));
    // The activity of round 1 ran again after a crash; its report (here, different) replaces the first.
    await ledger.append('job-b', 1, 1, report([2, 3]));
    // A stale attempt at round 0 wakes up late.
    await ledger.append('job-b', 1, 0, report([9]));
    expect((await readAll(ledger, 'job-b', 1)).map((e) => [e.index, e.status])).toEqual([
      [0, 'done'],
      [1, 'done'],
      [2, 'done'],
      [3, 'done'],
    ]);
    expect((await ledger.index('job-b', 1))!.firstFailures).toEqual([]);
  });

  it('pages failures reading only the segments a page falls in', async () => {
    const store = blobStore();
    const ledger = new LedgerStore(store);
    const written = await writeRounds(ledger, 'job-c', 1, 100, 100, 50);
    const failed = written.filter((e) => e.status === 'failed');
    expect(failed).toHaveLength(200);
    const index = (await ledger.index('job-c', 1))!;
    let gets = 0;
    const get = store.get.bind(store);
    store.get = (ref) => {
      gets++;
      return get(ref);
    };
    const pages: LedgerEntry[] = [];
    let segmentsPaged = 0;
    const segments = [...index.segments, index.tail!];
    for (let from = 0; from < 200; from += 30) {
      pages.push(...(await ledger.failures(index, from, 30)));
      // The segments holding failures from..from+29.
      let before = 0;
      for (const s of segments) {
        if (before < from + 30 && before + s.failed > from) segmentsPaged++;
        before += s.failed;
      }
    }
    expect(pages).toEqual(failed);
    expect(gets).toBe(segmentsPaged);
    expect(gets).toBeLessThan(20);
  });

  it('reads a job across attempts by each item latest entry, and tells the next attempt what it needs', async () => {
    const store = blobStore();
    const ledger = new LedgerStore(store);
    // Attempt 1: items 0-9, 3 and 7 fail; attempt 2 (corrected input) retries them: 3 is done, 7 left uncertain.
    await ledger.append('job-d', 1, 0, {
      entries: [0, 1, 2, 3, 4, 5, 6, 7, 8, 9]
        .map((i) => entry(i, 0))
        .map((e) => (e.index === 3 || e.index === 7 ? { ...e, status: 'failed' as const } : e)),
      counts: {},
    });
    await ledger.append('job-d', 2, 0, {
      entries: [
        { ...entry(3), status: 'done' },
        { ...entry(7), status: 'uncertain', error: { name: 'UncertainCallError', message: 'may have landed' } },
      ],
      counts: {},
    });
    const job = await JobLedger.open(store, 'job-d', 3);
    expect(job.exists).toBe(true);
    const { entries, total } = await job.failures(0, 10);
    expect(total).toBe(1);
    expect(entries.map((e) => [e.key, e.status, e.attempt])).toEqual([['lead7@example.com', 'uncertain', 2]]);
    const known = await job.known();
    expect(known.items.done.sort()).toEqual([0, 1, 2, 3, 4, 5, 6, 8, 9].map((i) => `lead${i}@example.com`).sort());
    expect(known.items.uncertain).toEqual(['lead7@example.com']);
    expect(known.items.failed).toEqual([]);
    expect((await JobLedger.open(store, 'job-none', 2)).exists).toBe(false);
  });

  it('exports the latest entries as CSV (the failed items with their own fields) or JSON', async () => {
    const store = blobStore();
    const ledger = new LedgerStore(store);
    await ledger.append('job-f', 1, 0, {
      entries: [
        entry(0, 0),
        {
          ledger: 'items',
          key: 'k,1',
          index: 1,
          status: 'failed',
          error: { name: 'ApiError', status: 422, message: 'email: not a valid email address: "x"' },
          item: { name: 'Ann "A"', email: 'x', index: 7 },
        },
      ],
      counts: {},
    });
    const job = await JobLedger.open(store, 'job-f', 1);
    const text = async (format: 'csv' | 'json', failedOnly = false) => {
      let out = '';
      for await (const chunk of exportLedger(job, format, { failedOnly })) out += chunk;
      return out;
    };
    expect(await text('csv')).toBe(
      [
        'attempt,ledger,key,index,status,error,http_status,message,reconciled,value,name,email,item.index',
        '1,items,lead0@example.com,0,done,,,,,"""lead_0""",,,',
        '1,items,"k,1",1,failed,ApiError,422,"email: not a valid email address: ""x""",,,"Ann ""A""",x,7',
        '',
      ].join('\r\n'),
    );
    expect((await text('csv', true)).split('\r\n')).toHaveLength(3);
    const json = JSON.parse(await text('json', true)) as unknown[];
    expect(json).toEqual([
      expect.objectContaining({ key: 'k,1', attempt: 1, item: { name: 'Ann "A"', email: 'x', index: 7 } }),
    ]);
  });

  it('holds 200,000 entries (200 rounds of 1,000) in a few segments, read back whole (bench/ledger.ts writes 1,000,000)', async () => {
    const store = blobStore();
    const ledger = new LedgerStore(store);
    let bytes = 0;
    const put = store.put.bind(store);
    store.put = (b) => {
      bytes += b.length;
      return put(b);
    };
    await writeRounds(ledger, 'job-e', 1, 200, 1_000, 100);
    const index = (await ledger.index('job-e', 1))!;
    expect(index.segments.length).toBeLessThan(20);
    let n = 0;
    for await (const batch of ledger.entries(index)) n += batch.length;
    expect(n).toBe(200_000);
    // Bytes written per entry, merges included (compressed JSON lines of about 80 characters).
    expect(bytes / 200_000).toBeLessThan(50);
    const page = await ledger.failures(index, 1_980, 20);
    expect(page.map((e) => e.index)).toEqual(Array.from({ length: 20 }, (_, i) => (1_980 + i) * 100));
  }, 60_000);
});
