/**
 * `npm run bench:ledger [-- ITEMS [ITEMS_PER_ROUND]]`: the import ledger at scale (issue 15), on the
 * local blob store, without Temporal: what the activities, the failures view, `jobs ledger` and a
 * resumed attempt do with a ledger of ITEMS entries (default 1,000,000), written ITEMS_PER_ROUND
 * (default 100) per round as each() with that concurrency settles them; 1% of items fail (422
 * with the row kept), the others are done with a lead id as their value.
 *
 * Measures: time per round's append (mean, and the whole write), bytes per item (the segments the
 * index refers to, and everything in the store: merged-away level-0 segments stay as blobs), time to
 * page through 1,000 failures (50 pages of 20, as job_status({ failures }) does), the full and the
 * failed-only CSV export, a resumed attempt's known keys (worked out once), and peak RSS.
 * Prints a table and a `BENCH_JSON {...}` line.
 */
import { mkdtemp, readdir, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { LocalBlobStore } from '../blobs/local-store.ts';
import type { LedgerCounts, LedgerEntry } from '../core/ledger.ts';
import { FAILURES_PER_PAGE } from '../jobs/service.ts';
import { exportLedger } from '../ledger/export.ts';
import { LedgerStore } from '../ledger/store.ts';
import { JobLedger, knownItemsFor } from '../ledger/views.ts';

const ITEMS = Number(process.argv[2] ?? 1_000_000);
const PER_ROUND = Number(process.argv[3] ?? 100);
const FAIL_EVERY = 100;
const JOB = 'bench-ledger';

function entry(index: number): LedgerEntry {
  const key = `row-${index}`;
  if (index % FAIL_EVERY === 7)
    return {
      ledger: 'items',
      key,
      index,
      status: 'failed',
      error: { name: 'ApiError', status: 422, message: `POST /leads → 422: invalid_email: "lead ${index} at example"` },
      item: { name: `Lead ${index}`, email: `lead ${index} at example`, company: 'Example Ltd', source: 'sheet' },
    };
  return { ledger: 'items', key, index, status: 'done', value: `lead_${(index * 7919).toString(36)}` };
}

async function dirBytes(dir: string): Promise<number> {
  let total = 0;
  for (const e of await readdir(dir, { withFileTypes: true, recursive: true }))
    if (e.isFile()) total += (await stat(join(e.parentPath, e.name))).size;
  return total;
}

const dir = await mkdtemp(join(tmpdir(), 'dcm-bench-ledger-'));
let peakRss = 0;
const sample = setInterval(() => (peakRss = Math.max(peakRss, process.memoryUsage.rss())), 50);
try {
  const store = new LocalBlobStore(dir);
  const ledger = new LedgerStore(store);
  const counts: LedgerCounts = { total: ITEMS, done: 0, failed: 0, uncertain: 0, skipped: 0 };
  const rounds = Math.ceil(ITEMS / PER_ROUND);
  let started = performance.now();
  for (let r = 0; r < rounds; r++) {
    const entries = Array.from({ length: Math.min(PER_ROUND, ITEMS - r * PER_ROUND) }, (_, i) =>
      entry(r * PER_ROUND + i),
    );
    for (const e of entries) counts[e.status]++;
    await ledger.append(JOB, 1, r, { entries, counts: { items: { ...counts } } });
  }
  const writeMs = performance.now() - started;
  const index = (await ledger.index(JOB, 1))!;
  const segments = [...index.segments, ...(index.tail ? [index.tail] : [])];
  const referenced = (await Promise.all(segments.map((s) => store.get(s.ref)))).reduce((n, b) => n + b.length, 0);
  const stored = await dirBytes(dir);

  const job = await JobLedger.open(store, JOB, 1);
  started = performance.now();
  let paged = 0;
  for (let page = 0; paged < 1000; page++) {
    const { entries } = await job.failures(page * FAILURES_PER_PAGE, FAILURES_PER_PAGE);
    if (entries.length === 0) break;
    paged += entries.length;
  }
  const pageMs = performance.now() - started;

  const exportMs = async (failedOnly: boolean) => {
    const t = performance.now();
    let bytes = 0;
    for await (const chunk of exportLedger(job, 'csv', { failedOnly })) bytes += chunk.length;
    return { ms: performance.now() - t, bytes };
  };
  const failedCsv = await exportMs(true);
  const fullCsv = await exportMs(false);

  started = performance.now();
  const known = await knownItemsFor(store, JOB, 2);
  const knownMs = performance.now() - started;
  started = performance.now();
  await knownItemsFor(store, JOB, 2);
  const knownAgainMs = performance.now() - started;

  const result = {
    items: ITEMS,
    itemsPerRound: PER_ROUND,
    rounds,
    segments: segments.length,
    writeSeconds: writeMs / 1000,
    appendMsPerRound: writeMs / rounds,
    referencedBytesPerItem: referenced / ITEMS,
    storedBytesPerItem: stored / ITEMS,
    failuresPaged: paged,
    pageFailuresMs: pageMs,
    failedCsv: { seconds: failedCsv.ms / 1000, bytes: failedCsv.bytes },
    fullCsv: { seconds: fullCsv.ms / 1000, bytes: fullCsv.bytes },
    knownItemsSeconds: knownMs / 1000,
    knownItemsAgainSeconds: knownAgainMs / 1000,
    knownDone: known.items.done.length,
    peakRssMb: Math.round(Math.max(peakRss, process.memoryUsage.rss()) / 2 ** 20),
  };
  console.table(result);
  console.log(`BENCH_JSON ${JSON.stringify(result)}`);
} finally {
  clearInterval(sample);
  await rm(dir, { recursive: true, force: true });
}
