/**
 * Activities wait out a blob store that cannot be reached (a directory moved away or unreadable, a
 * failing disk, an S3 server that is down): the call is tried again with backoff, without limit,
 * while the activity heartbeats, until the store is back or the activity is cancelled. Failing the
 * activity instead would spend its retries (and fail the job after an outage of seconds), and after
 * an API call had succeeded, a retried activity would send the call again.
 *
 * A blob that is missing or corrupt while the store is there is not waited for: that fails at once.
 */
import { setTimeout as delay } from 'node:timers/promises';
import { type BlobStore, BlobStoreUnavailableError } from '../blobs/store.ts';

export interface StoreWaitHooks {
  /** Called at least every `beatMs` while waiting (an activity heartbeat). */
  beat(): void;
  /** Ends the wait when aborted (the activity's cancellation). */
  signal(): AbortSignal | undefined;
  /** Told once per outage, when the first call starts waiting (the worker's log). */
  waiting(error: BlobStoreUnavailableError): void;
  /** Told when a call succeeds again after an outage, with how long it lasted. */
  back(outageMs: number): void;
}

export interface StoreWaitTiming {
  firstDelayMs: number;
  maxDelayMs: number;
  beatMs: number;
}

const TIMING: StoreWaitTiming = { firstDelayMs: 250, maxDelayMs: 5_000, beatMs: 2_000 };

/** `store`, with every call waiting out BlobStoreUnavailableError. */
export function waitingForBlobStore(
  store: BlobStore,
  hooks: StoreWaitHooks,
  timing: StoreWaitTiming = TIMING,
): BlobStore {
  /** When the current outage was first seen, by any call; undefined while the store answers. */
  let outageSince: number | undefined;

  async function patiently<T>(call: () => Promise<T>): Promise<T> {
    for (let wait = timing.firstDelayMs; ; wait = Math.min(wait * 2, timing.maxDelayMs)) {
      try {
        const result = await call();
        if (outageSince !== undefined) {
          hooks.back(Date.now() - outageSince);
          outageSince = undefined;
        }
        return result;
      } catch (e) {
        if (!(e instanceof BlobStoreUnavailableError)) throw e;
        if (outageSince === undefined) {
          outageSince = Date.now();
          hooks.waiting(e);
        }
        await pause(wait, e);
      }
    }
  }

  /** Sleeps `ms`, heartbeating; a cancelled activity stops waiting with the store's error. */
  async function pause(ms: number, unavailable: BlobStoreUnavailableError): Promise<void> {
    for (let left = ms; left > 0; left -= timing.beatMs) {
      try {
        await delay(Math.min(left, timing.beatMs), undefined, { signal: hooks.signal() });
      } catch {
        throw unavailable;
      }
      hooks.beat();
    }
  }

  return {
    location: store.location,
    put: (bytes) => patiently(() => store.put(bytes)),
    get: (ref) => patiently(() => store.get(ref)),
    putRecord: (name, bytes, options) => patiently(() => store.putRecord(name, bytes, options)),
    getRecord: (name) => patiently(() => store.getRecord(name)),
    deleteRecords: (folder) => patiently(() => store.deleteRecords(folder)),
  };
}
