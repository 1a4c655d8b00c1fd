/**
 * A blob store that cannot be reached is told apart from a blob that is missing or corrupt while the
 * store is there (blobs/local-store.ts), and activities wait out the first (activities/blob-store-waits.ts).
 */
import { existsSync, mkdtempSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { waitingForBlobStore } from '../../activities/blob-store-waits.ts';
import { LocalBlobStore } from '../../blobs/local-store.ts';
import {
  BlobCorruptError,
  BlobMissingError,
  type BlobStore,
  BlobStoreUnavailableError,
  contentAddress,
} from '../../blobs/store.ts';

const newStore = () => {
  const directory = join(mkdtempSync(join(tmpdir(), 'dcm-faults-')), 'blobs');
  return { directory, store: new LocalBlobStore(directory) };
};
const never = { blob: contentAddress(Buffer.from('never stored')), bytes: 12 };

/** Every call of the store, each to be refused the same way. */
const calls = (store: BlobStore) => ({
  get: () => store.get(never),
  put: () => store.put(Buffer.from('new')),
  getRecord: () => store.getRecord('outcomes/job/1'),
  putRecord: () => store.putRecord('outcomes/job/1', Buffer.from('{}')),
  deleteRecords: () => store.deleteRecords('outcomes/job/'),
});

describe('the local blob store', () => {
  it('answers a missing blob with BlobMissingError, a corrupt one with BlobCorruptError, a missing record with undefined', async () => {
    const { directory, store } = newStore();
    await expect(store.get(never)).rejects.toBeInstanceOf(BlobMissingError);
    const ref = await store.put(Buffer.from('{"v":1}'));
    writeFileSync(join(directory, ref.blob.slice(7, 9), ref.blob.slice(9, 11), ref.blob), '{"v":2}');
    await expect(store.get(ref)).rejects.toBeInstanceOf(BlobCorruptError);
    expect(await store.getRecord('outcomes/none')).toBeUndefined();
    expect(await store.deleteRecords('outcomes/none/')).toBe(0);
  });

  it.each(Object.keys(calls(newStore().store)))(
    '%s: a directory moved away is an outage, and is not made anew',
    async (call) => {
      const { directory, store } = newStore();
      const ref = await store.put(Buffer.from('kept'));
      renameSync(directory, `${directory}.away`);
      const attempt = calls(store)[call as keyof ReturnType<typeof calls>];
      const error = await attempt().catch((e: unknown) => e);
      expect(error).toBeInstanceOf(BlobStoreUnavailableError);
      expect((error as Error).message).toMatch(`in the blob store ${directory}: the directory is gone`);
      expect(existsSync(directory)).toBe(false);
      renameSync(`${directory}.away`, directory);
      expect((await store.get(ref)).toString()).toBe('kept');
    },
  );

  it.each(['get', 'put', 'putRecord'] as const)(
    '%s: a directory replaced by a file is an outage, not a missing blob',
    async (call) => {
      const { directory, store } = newStore();
      rmSync(directory, { recursive: true });
      writeFileSync(directory, 'not a directory');
      const attempt = calls(store)[call];
      const error = await attempt().catch((e: unknown) => e);
      expect(error).toBeInstanceOf(BlobStoreUnavailableError);
      expect((error as Error).message).toMatch('it is not a directory');
    },
  );
});

describe('activities waiting for the blob store', () => {
  const timing = { firstDelayMs: 5, maxDelayMs: 20, beatMs: 10 };
  const outage = () => new BlobStoreUnavailableError('/data/blobs', 'read blob x', 'the directory is gone', '');

  /** A store whose get fails with `failure()` for the first `failures` calls. */
  function flaky(failures: number, failure: () => Error) {
    let calls = 0;
    const store = {
      location: '/data/blobs',
      get: async () => {
        if (calls++ < failures) throw failure();
        return Buffer.from('back');
      },
    } as unknown as BlobStore;
    return { store, calls: () => calls };
  }

  it('tries again with backoff until the store is back, heartbeating, and tells the outage once', async () => {
    const { store, calls } = flaky(6, outage);
    const told: string[] = [];
    let beats = 0;
    const waiting = waitingForBlobStore(
      store,
      {
        beat: () => beats++,
        signal: () => undefined,
        waiting: (e) => told.push(e.message),
        back: (ms) => told.push(`back after ${ms >= 0 ? 'some' : 'no'} time`),
      },
      timing,
    );
    const [first, second] = await Promise.all([waiting.get(never), waiting.get(never)]);
    expect([first.toString(), second.toString()]).toEqual(['back', 'back']);
    expect(calls()).toBeGreaterThanOrEqual(7);
    expect(told).toEqual([outage().message, 'back after some time']);
    expect(beats).toBeGreaterThanOrEqual(3);
  });

  it('does not wait for a missing blob', async () => {
    const { store, calls } = flaky(1, () => new BlobMissingError(never, '/data/blobs'));
    const waiting = waitingForBlobStore(
      store,
      { beat: () => {}, signal: () => undefined, waiting: () => expect.unreachable(), back: () => {} },
      timing,
    );
    await expect(waiting.get(never)).rejects.toBeInstanceOf(BlobMissingError);
    expect(calls()).toBe(1);
  });

  it('stops waiting when the activity is cancelled, with the outage as the error', async () => {
    const { store } = flaky(Infinity, outage);
    const cancel = new AbortController();
    const waiting = waitingForBlobStore(
      store,
      { beat: () => cancel.abort(), signal: () => cancel.signal, waiting: () => {}, back: () => {} },
      timing,
    );
    await expect(waiting.get(never)).rejects.toBeInstanceOf(BlobStoreUnavailableError);
  });
});
