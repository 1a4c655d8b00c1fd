/**
 * Where a job's ledger lives (issue 15): in the blob store every worker and server shares, never in
 * workflow history.
 *
 * - **Segments**: content-addressed blobs of entries, one JSON line each, gzip-compressed. A round's
 *   entries become one segment; sixteen segments of one level are merged into one of the next
 *   (gzip members concatenate, so merging is copying bytes), up to MAX_LEVEL, so a million items
 *   take a few dozen segments and each round writes one small blob.
 * - **The index**: a named record per job attempt, `ledger/<job>/<attempt>`, listing the segments
 *   in order with their entry and failure counts, the counts per ledger name, and the first few
 *   failures. Readers (the job tool's status, the failures view, `jobs ledger`, a resumed attempt) start there.
 *
 * Rounds of a job run one at a time, and the index says which round it holds last. A round's
 * entries are written once: an activity retried after a crash writes the same round again, which
 * replaces that round's segment (the tail) instead of adding to it, and an activity older than the
 * index's round (a stale attempt) writes nothing.
 */
import { gunzipSync, gzipSync } from 'node:zlib';
import { z } from 'zod';
import type { BlobStore } from '../blobs/store.ts';
import { BlobRef } from '../core/journal.ts';
import {
  FIRST_FAILURES,
  KnownItems,
  LedgerCounts,
  LedgerEntry,
  type LedgerReport,
  type LedgerSummary,
} from '../core/ledger.ts';

/** This many segments of one level are merged into one of the next level. */
const MERGE_FAN_IN = 16;
/** Segments stop growing at this level (256 rounds' entries), so paging failures never reads much more than it shows. */
const MAX_LEVEL = 2;

const Segment = z.object({
  ref: BlobRef,
  entries: z.number().int().nonnegative(),
  /** Entries that are failed or uncertain: a failures page skips segments without any. */
  failed: z.number().int().nonnegative(),
  level: z.number().int().nonnegative(),
});

export const LedgerIndex = z.object({
  attempt: z.number().int().positive(),
  /** The last round whose entries are written (-1: none yet). */
  round: z.number().int(),
  counts: z.record(z.string(), LedgerCounts),
  firstFailures: z.array(LedgerEntry),
  /** Sealed segments, oldest first. */
  segments: z.array(Segment),
  /** The entries of round `round`, replaced if that round is written again. */
  tail: Segment.optional(),
});

export type LedgerIndex = z.infer<typeof LedgerIndex>;
export type Segment = z.infer<typeof Segment>;

/** Record names accept letters, digits and `._:@=+-`; anything else in a job id is spelled `=hh`. */
function nameSegment(text: string): string {
  return text.replace(/[^A-Za-z0-9._:@+-]/g, (c) =>
    [...Buffer.from(c)].map((b) => `=${b.toString(16).padStart(2, '0')}`).join(''),
  );
}

export const ledgerRecordNames = {
  index: (jobId: string, attempt: number) => `ledger/${nameSegment(jobId)}/${attempt}`,
  /** What attempt `attempt` was told about the earlier ones (a BlobRef of saveKnownItems). */
  known: (jobId: string, attempt: number) => `ledger/${nameSegment(jobId)}/known-${attempt}`,
};

const isFailure = (entry: LedgerEntry) => entry.status !== 'done';

export function encodeEntries(entries: LedgerEntry[]): Buffer {
  return gzipSync(entries.map((e) => JSON.stringify(e)).join('\n') + '\n');
}

/**
 * A segment's entries. Not validated again: the blob store verified the bytes against their content
 * address, and only LedgerStore.append writes segments, from reports already parsed as RoundReport.
 */
export function decodeEntries(bytes: Buffer): LedgerEntry[] {
  const lines = gunzipSync(bytes).toString('utf8').trimEnd().replaceAll('\n', ',');
  return lines ? (JSON.parse(`[${lines}]`) as LedgerEntry[]) : [];
}

export class LedgerStore {
  private readonly store: BlobStore;

  constructor(store: BlobStore) {
    this.store = store;
  }

  async index(jobId: string, attempt: number): Promise<LedgerIndex | undefined> {
    const bytes = await this.store.getRecord(ledgerRecordNames.index(jobId, attempt));
    return bytes ? LedgerIndex.parse(JSON.parse(bytes.toString('utf8'))) : undefined;
  }

  /**
   * Writes what the sandbox reported after round `round` of the job's attempt, and returns the
   * ledger's summary for the workflow (counts, and the first failures while fewer than
   * FIRST_FAILURES are known).
   */
  async append(jobId: string, attempt: number, round: number, report: LedgerReport): Promise<LedgerSummary> {
    const index = (await this.index(jobId, attempt)) ?? {
      attempt,
      round: -1,
      counts: {},
      firstFailures: [],
      segments: [],
    };
    if (round < index.round) return summaryOf(index);
    if (round === index.round) {
      // The same round again (an activity retried after a crash): its entries replace the tail's.
      index.firstFailures = index.firstFailures.filter((f) => !report.entries.some((e) => sameItem(e, f)));
      index.tail = undefined;
    } else if (index.tail) {
      index.segments.push(index.tail);
      index.tail = undefined;
      index.segments = await this.merged(index.segments);
    }
    if (report.entries.length > 0) {
      index.tail = {
        ref: await this.store.put(encodeEntries(report.entries)),
        entries: report.entries.length,
        failed: report.entries.filter(isFailure).length,
        level: 0,
      };
    }
    for (const entry of report.entries) {
      if (index.firstFailures.length >= FIRST_FAILURES) break;
      if (isFailure(entry)) index.firstFailures.push(entry);
    }
    index.round = round;
    index.counts = report.counts;
    await this.store.putRecord(ledgerRecordNames.index(jobId, attempt), Buffer.from(JSON.stringify(index)));
    return summaryOf(index);
  }

  /** The entries of the index's segments (the tail included), in order, one segment at a time. */
  async *entries(index: LedgerIndex, options: { failedOnly?: boolean } = {}): AsyncGenerator<LedgerEntry[]> {
    for (const segment of allSegments(index)) {
      if (options.failedOnly && segment.failed === 0) continue;
      const entries = decodeEntries(await this.store.get(segment.ref));
      yield options.failedOnly ? entries.filter(isFailure) : entries;
    }
  }

  /**
   * Failed and uncertain entries `from` (0-based, in ledger order) on, at most `count`: segments
   * before the page are skipped by their failure counts, without reading them.
   */
  async failures(index: LedgerIndex, from: number, count: number): Promise<LedgerEntry[]> {
    const page: LedgerEntry[] = [];
    let skipped = 0;
    for (const segment of allSegments(index)) {
      if (page.length >= count) break;
      if (skipped + segment.failed <= from) {
        skipped += segment.failed;
        continue;
      }
      const failed = decodeEntries(await this.store.get(segment.ref)).filter(isFailure);
      const start = Math.max(0, from - skipped);
      page.push(...failed.slice(start, start + count - page.length));
      skipped += segment.failed;
    }
    return page;
  }

  /** Merges trailing runs of MERGE_FAN_IN segments of one level into one segment of the next. */
  private async merged(segments: Segment[]): Promise<Segment[]> {
    for (;;) {
      const last = segments.at(-1);
      if (!last || last.level >= MAX_LEVEL) return segments;
      const run = segments.slice(-MERGE_FAN_IN);
      if (run.length < MERGE_FAN_IN || run.some((s) => s.level !== last.level)) return segments;
      const parts = await Promise.all(run.map((s) => this.store.get(s.ref)));
      const merged: Segment = {
        ref: await this.store.put(Buffer.concat(parts)),
        entries: run.reduce((n, s) => n + s.entries, 0),
        failed: run.reduce((n, s) => n + s.failed, 0),
        level: last.level + 1,
      };
      segments = [...segments.slice(0, -MERGE_FAN_IN), merged];
    }
  }
}

function allSegments(index: LedgerIndex): Segment[] {
  return index.tail ? [...index.segments, index.tail] : index.segments;
}

function sameItem(a: LedgerEntry, b: LedgerEntry): boolean {
  return a.ledger === b.ledger && a.key === b.key;
}

export function summaryOf(index: LedgerIndex): LedgerSummary {
  return { counts: index.counts, firstFailures: index.firstFailures };
}

/** Failed and uncertain entries in the index's segments. */
export function failureCount(index: LedgerIndex): number {
  return allSegments(index).reduce((n, s) => n + s.failed, 0);
}

/** Saves what a resumed attempt must know about earlier attempts (see KnownItems), for every session of it to load. */
export async function saveKnownItems(store: BlobStore, known: KnownItems): Promise<BlobRef> {
  return store.put(gzipSync(JSON.stringify(known)));
}

export async function loadKnownItems(store: BlobStore, ref: BlobRef): Promise<KnownItems> {
  return KnownItems.parse(JSON.parse(gunzipSync(await store.get(ref)).toString('utf8')));
}
