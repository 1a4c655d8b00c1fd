/**
 * A worker's mark (activities/worker-mark.ts): written at once and every second while the worker
 * holds something others may wait on, never while it holds nothing; and what a worker offered a
 * round of another worker's session makes of that worker's mark (runRoundHere).
 */
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ApplicationFailure } from '@temporalio/activity';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { createActivities } from '../../activities/index.ts';
import { SessionRegistry } from '../../activities/sessions.ts';
import { lastSignOf, WorkerMark } from '../../activities/worker-mark.ts';
import { LocalBlobStore } from '../../blobs/local-store.ts';
import { callRecordNames } from '../../core/call-records.ts';
import { INTERNAL_FAILURES } from '../../core/errors.ts';
import type { RunRoundHereArgs } from '../../core/journal.ts';
import { PrivacyConfig } from '../../privacy/config.ts';
import { Privacy } from '../../privacy/privacy.ts';
import { UpstreamMcpServers } from '../../providers/mcp-client.ts';

const newStore = () => new LocalBlobStore(join(mkdtempSync(join(tmpdir(), 'dcm-mark-')), 'blobs'));

afterEach(() => {
  vi.useRealTimers();
});

describe('WorkerMark', () => {
  it('marks at once, every second while the worker is busy, and stops once it holds nothing', async () => {
    vi.useFakeTimers({ toFake: ['setInterval', 'clearInterval', 'Date'] });
    const writes: number[] = [];
    const store = {
      putRecord: async (name: string, bytes: Buffer) => {
        expect(name).toBe(callRecordNames.worker('worker-a'));
        writes.push((JSON.parse(bytes.toString('utf8')) as { at: number }).at);
        return true;
      },
    };
    let busy = true;
    const mark = new WorkerMark(store, 'worker-a', () => busy);
    mark.keepFresh();
    mark.keepFresh();
    expect(writes).toHaveLength(1);
    await vi.advanceTimersByTimeAsync(3_000);
    expect(writes).toHaveLength(4);
    busy = false;
    await vi.advanceTimersByTimeAsync(5_000);
    expect(writes).toHaveLength(4);
    // Busy again: a mark at once (the last is older than a second), then every second again.
    busy = true;
    mark.keepFresh();
    await vi.advanceTimersByTimeAsync(1_000);
    expect(writes).toHaveLength(6);
    mark.stop();
    await vi.advanceTimersByTimeAsync(3_000);
    expect(writes).toHaveLength(6);
  });

  it('reads when a worker last marked itself, and nothing for one that never did', async () => {
    const store = newStore();
    const mark = new WorkerMark(store, 'worker-a', () => false);
    mark.keepFresh();
    mark.stop();
    await vi.waitFor(async () => expect(await lastSignOf(store, 'worker-a')).toBeGreaterThan(Date.now() - 5_000));
    expect(await lastSignOf(store, 'worker-b')).toBeUndefined();
  });
});

describe('a round offered to a worker that does not hold its session (runRoundHere)', () => {
  const store = newStore();
  const activities = createActivities({
    providers: {},
    sandboxProviders: [],
    upstream: new UpstreamMcpServers({}),
    sessions: new SessionRegistry({ idleMs: 60_000, maxSessions: 2 }),
    sessionTaskQueue: 'jobs/session/here',
    blobs: store,
    blobThresholdBytes: 4096,
    privacy: new Privacy(PrivacyConfig.parse({}), { store }),
  });
  const offer = (holder: string) =>
    activities.shared.runRoundHere({ sessionId: 'session-1', sessionTaskQueue: holder } as RunRoundHereArgs);
  const failureType = (promise: Promise<unknown>) =>
    promise.then(
      () => 'ran',
      (e: unknown) => (e instanceof ApplicationFailure ? e.type : String(e)),
    );
  const markAt = (worker: string, at: number) =>
    store.putRecord(callRecordNames.worker(worker), Buffer.from(JSON.stringify({ at })));

  it('declines it for a holder that marked itself alive lately, or never marked itself', async () => {
    await markAt('jobs/session/alive', Date.now() - 500);
    expect(await failureType(offer('jobs/session/alive'))).toBe(INTERNAL_FAILURES.SessionElsewhere);
    expect(await failureType(offer('jobs/session/unknown'))).toBe(INTERNAL_FAILURES.SessionElsewhere);
  });

  it('fails it as a lost session (the job replays at once) when the holder has given no sign of life for seconds', async () => {
    await markAt('jobs/session/dead', Date.now() - 4_000);
    expect(await failureType(offer('jobs/session/dead'))).toBe(INTERNAL_FAILURES.SessionLost);
  });
});
