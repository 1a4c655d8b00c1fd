/**
 * A job's ledger across its attempts, as operators and resumed attempts read it: each item's latest
 * entry counts (an item that failed in attempt 1 and was done by attempt 2 is done). Attempts that
 * skipped an item (done before) wrote nothing for it, so its earlier entry stays its record.
 */
import type { BlobStore } from '../blobs/store.ts';
import type { KnownItems, LedgerEntry } from '../core/ledger.ts';
import { BlobRef } from '../core/journal.ts';
import {
  failureCount,
  type LedgerIndex,
  ledgerRecordNames,
  LedgerStore,
  loadKnownItems,
  saveKnownItems,
} from './store.ts';

/** An entry as the views give it: which attempt wrote it. */
export type AttemptEntry = LedgerEntry & { attempt: number };

const itemId = (e: LedgerEntry) => `${e.ledger}\u0000${e.key}`;

export class JobLedger {
  private readonly ledger: LedgerStore;
  private readonly indexes: LedgerIndex[];

  private constructor(ledger: LedgerStore, indexes: LedgerIndex[]) {
    this.ledger = ledger;
    this.indexes = indexes;
  }

  /** The ledger of attempts 1..`attempts` of the job (attempts that wrote none are left out). */
  static async open(store: BlobStore, jobId: string, attempts: number): Promise<JobLedger> {
    const ledger = new LedgerStore(store);
    const found = await Promise.all(Array.from({ length: attempts }, (_, i) => ledger.index(jobId, i + 1)));
    return new JobLedger(
      ledger,
      found.filter((i) => i !== undefined),
    );
  }

  /** Whether any attempt wrote a ledger (the script used each()). */
  get exists(): boolean {
    return this.indexes.length > 0;
  }

  /**
   * Items whose latest entry is failed or uncertain, `from` (0-based) on, at most `count`, and how
   * many there are in all. With one attempt, a page reads only the segments it falls in.
   */
  async failures(from: number, count: number): Promise<{ entries: AttemptEntry[]; total: number }> {
    const [only] = this.indexes;
    if (this.indexes.length === 1) {
      const entries = await this.ledger.failures(only, from, count);
      return { entries: entries.map((e) => ({ ...e, attempt: only.attempt })), total: failureCount(only) };
    }
    const all: AttemptEntry[] = [];
    for await (const batch of this.current({ failedOnly: true })) all.push(...batch);
    return { entries: all.slice(from, from + count), total: all.length };
  }

  /**
   * Each item's latest entry (only failed and uncertain ones with `failedOnly`), attempt by attempt
   * and in ledger order within one, a segment at a time.
   */
  async *current(options: { failedOnly?: boolean } = {}): AsyncGenerator<AttemptEntry[]> {
    for (let a = 0; a < this.indexes.length; a++) {
      const index = this.indexes[a];
      const later = a < this.indexes.length - 1 ? await this.keysOf(this.indexes.slice(a + 1)) : undefined;
      for await (const entries of this.ledger.entries(index, options)) {
        const latest = later ? entries.filter((e) => !later.has(itemId(e))) : entries;
        if (latest.length > 0) yield latest.map((e) => ({ ...e, attempt: index.attempt }));
      }
    }
  }

  /** What the next attempt must know: per ledger name, the keys whose latest entry is done, uncertain or failed. */
  async known(): Promise<KnownItems> {
    const latest = new Map<string, LedgerEntry>();
    for (const index of this.indexes)
      for await (const entries of this.ledger.entries(index)) for (const e of entries) latest.set(itemId(e), e);
    const known: KnownItems = {};
    for (const entry of latest.values()) {
      known[entry.ledger] ??= { done: [], uncertain: [], failed: [] };
      known[entry.ledger][entry.status].push(entry.key);
    }
    return known;
  }

  private async keysOf(indexes: LedgerIndex[]): Promise<Set<string>> {
    const keys = new Set<string>();
    for (const index of indexes)
      for await (const entries of this.ledger.entries(index)) for (const e of entries) keys.add(itemId(e));
    return keys;
  }
}

/**
 * What attempt `attempt` of a job knows about the earlier ones (see JobLedger.known), worked out
 * once and kept as one blob: every session of the attempt (the first, and any replay after a lost
 * worker) must be told the same, and reading a million entries again for each would be slow.
 * A resume preview reads without keeping (`keep` false): it must leave the job as it found it.
 */
export async function knownItemsFor(
  store: BlobStore,
  jobId: string,
  attempt: number,
  keep = true,
): Promise<KnownItems> {
  const name = ledgerRecordNames.known(jobId, attempt);
  const saved = await store.getRecord(name);
  if (saved) return loadKnownItems(store, BlobRef.parse(JSON.parse(saved.toString('utf8'))));
  const known = await (await JobLedger.open(store, jobId, attempt - 1)).known();
  if (!keep) return known;
  const ref = await saveKnownItems(store, known);
  // Two sessions working it out at once write the same: the first record stays.
  await store.putRecord(name, Buffer.from(JSON.stringify(ref)), { ifAbsent: true });
  return known;
}
