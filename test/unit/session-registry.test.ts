import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { callsAhead } from '../../activities/ahead.ts';
import { DetachedAttempt } from '../../activities/attempt.ts';
import type { CallEnd } from '../../activities/calls.ts';
import { SessionRegistry } from '../../activities/sessions.ts';
import type { ScriptSession } from '../../sandbox/session.ts';

function sandbox() {
  return { dispose: vi.fn() } as unknown as ScriptSession & { dispose: ReturnType<typeof vi.fn> };
}

describe('SessionRegistry', () => {
  beforeEach(() => {
    vi.useFakeTimers();
  });
  afterEach(() => {
    vi.useRealTimers();
  });

  it('keeps sessions whose next round is on its way over the limit, and drops the idle ones first', () => {
    const registry = new SessionRegistry({ idleMs: 600_000, maxSessions: 2 });
    const idle = sandbox();
    registry.add('idle', idle, []);
    vi.advanceTimersByTime(60_000);
    const [a, b] = [sandbox(), sandbox()];
    registry.add('a', a, []);
    registry.add('b', b, []);
    // The idle one made room; a and b just ran a round and wait for their next.
    expect(idle.dispose).toHaveBeenCalled();
    const c = sandbox();
    registry.add('c', c, []);
    expect(registry.size).toBe(3);
    expect(registry.take('a')).toBeDefined();
    expect(registry.take('b')).toBeDefined();
    expect(registry.take('c')).toBeDefined();
    void registry.close();
  });

  it('once the grace has passed, a waiting session is idle and gives its place to a new one', () => {
    const registry = new SessionRegistry({ idleMs: 600_000, maxSessions: 1 });
    const sleeping = sandbox();
    registry.add('sleeping', sleeping, []);
    vi.advanceTimersByTime(30_000);
    registry.add('new', sandbox(), []);
    expect(sleeping.dispose).toHaveBeenCalled();
    expect(registry.take('sleeping')).toBeUndefined();
    expect(registry.size).toBe(1);
    void registry.close();
  });

  it('on close, stops calls started ahead that were not sent, and waits for the outcome records of those that were', async () => {
    const registry = new SessionRegistry({ idleMs: 600_000, maxSessions: 2 });
    registry.add('live', sandbox(), []);
    const attempt = new DetachedAttempt({
      token: { job: 1, scheduledAt: 0 },
      cancelGraceMs: 10_000,
      staleAfterMs: 1_250,
    });
    let recordWritten!: () => void;
    const recorded = new Promise<void>((resolve) => (recordWritten = resolve));
    const answered: CallEnd = { result: { outcome: { ok: true, value: 1 } }, recorded };
    let unsent!: (end: CallEnd) => void;
    const notYetSent = new Promise<CallEnd>((resolve) => (unsent = resolve));
    attempt.signal.addEventListener('abort', () => unsent({ unsettled: 'not sent' }));
    const turn = vi.fn(() => Promise.reject(new Error('no turn: a call was not sent')));
    expect(
      registry.startAhead('live', () =>
        callsAhead({ firstSeq: 0, roundsDelivered: 1 }, attempt, () => [Promise.resolve(answered), notYetSent], turn),
      ),
    ).toBe(true);

    let closed = false;
    const closing = registry.close().then(() => (closed = true));
    expect(attempt.signal.aborted).toBe(true);
    await vi.advanceTimersByTimeAsync(100);
    expect(closed).toBe(false); // the sent call's outcome record is still being written
    recordWritten();
    await closing;
    expect(closed).toBe(true);
    expect(turn).not.toHaveBeenCalled();
  });
});
