/**
 * A worker's sign of life in the blob store every worker shares (`workers/<id>`). A worker keeps
 * its mark fresh, every second, while others may wait on it:
 * - while it has calls in flight: another attempt at the same call waits for the outcome while the
 *   sending worker's mark is fresh (calls.ts);
 * - while it holds live sessions: a worker offered a round of one of them replays the job at once
 *   when the holder's mark has gone stale, rather than handing the round to a dead worker's queue
 *   (runRoundHere in index.ts).
 * A worker that holds nothing writes nothing.
 */
import type { BlobStore } from '../blobs/store.ts';
import { callRecordNames, WorkerMark as WorkerMarkRecord } from '../core/call-records.ts';

/** A mark older than this is taken for a dead or frozen worker (a live one refreshes it every second). */
export const WORKER_MARK_STALE_MS = 2_500;
const WORKER_MARK_EVERY_MS = 1_000;

export class WorkerMark {
  private readonly store: Pick<BlobStore, 'putRecord'>;
  private readonly workerId: string;
  private readonly busy: () => boolean;
  private timer: NodeJS.Timeout | undefined;
  private writtenAt = 0;

  /** `busy`: whether the worker still holds something others may wait on (checked every second). */
  constructor(store: Pick<BlobStore, 'putRecord'>, workerId: string, busy: () => boolean) {
    this.store = store;
    this.workerId = workerId;
    this.busy = busy;
  }

  /** The worker took on something others may wait on: keep its mark fresh until it holds nothing. */
  keepFresh(): void {
    if (this.timer) return;
    if (Date.now() - this.writtenAt >= WORKER_MARK_EVERY_MS) void this.write();
    this.timer = setInterval(() => {
      if (this.busy()) void this.write();
      else this.stop();
    }, WORKER_MARK_EVERY_MS);
    this.timer.unref();
  }

  stop(): void {
    clearInterval(this.timer);
    this.timer = undefined;
  }

  private async write(): Promise<void> {
    this.writtenAt = Date.now();
    try {
      const mark: WorkerMarkRecord = { at: this.writtenAt };
      await this.store.putRecord(callRecordNames.worker(this.workerId), Buffer.from(JSON.stringify(mark)));
    } catch {
      // A missed mark only makes others stop waiting on this worker sooner.
    }
  }
}

/** When worker `workerId` last marked itself alive (epoch ms); undefined if it never did. */
export async function lastSignOf(store: Pick<BlobStore, 'getRecord'>, workerId: string): Promise<number | undefined> {
  const bytes = await store.getRecord(callRecordNames.worker(workerId));
  return bytes ? WorkerMarkRecord.parse(JSON.parse(bytes.toString('utf8'))).at : undefined;
}
