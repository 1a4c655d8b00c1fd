/**
 * Calls ahead (activities/ahead.ts): the next round's calls start once this activity's completion
 * is on its way, and the sandbox takes its turn on their answers before the next round's activity
 * comes for them; only that round may take the session up (activities/rounds.ts takeLiveSession).
 */
import { describe, expect, it, vi } from 'vitest';
import { callsAhead, type SandboxTurn } from '../../activities/ahead.ts';
import { DetachedAttempt } from '../../activities/attempt.ts';
import type { CallEnd } from '../../activities/calls.ts';
import { takeLiveSession } from '../../activities/rounds.ts';
import { SessionRegistry } from '../../activities/sessions.ts';
import { INTERNAL_FAILURES } from '../../core/errors.ts';
import type { CallResult } from '../../core/journal.ts';
import type { ScriptSession } from '../../sandbox/session.ts';

const attempt = () =>
  new DetachedAttempt({ token: { job: 1, scheduledAt: 0 }, cancelGraceMs: 10_000, staleAfterMs: 1_250 });
const answered = (value: number): CallEnd => ({
  result: { outcome: { ok: true, value } },
  recorded: Promise.resolve(),
});
/** A turn that reported nothing, at `now`. */
const turnAt = (now: number): SandboxTurn => ({
  now,
  prepared: {
    report: { effects: [], steps: [], logs: [], droppedLogs: 0, progress: null, outcome: null },
    waitingOn: [],
    steps: [],
  },
  outcomes: [],
});
const nextTick = () => new Promise((resolve) => setImmediate(resolve));

describe('calls ahead', () => {
  it('sends nothing before the activity that starts them has returned its result (the next macrotask)', async () => {
    const calls = vi.fn(() => [Promise.resolve(answered(1))]);
    const ahead = callsAhead({ firstSeq: 3, roundsDelivered: 2 }, attempt(), calls, async () => turnAt(1));
    await Promise.resolve();
    expect(calls).not.toHaveBeenCalled();
    await ahead.ends;
    expect(calls).toHaveBeenCalledTimes(1);
  });

  it("takes the sandbox's turn on the answers as soon as every call has one", async () => {
    const turn = vi.fn(async (results: CallResult[]) => turnAt(results.length));
    const ahead = callsAhead(
      { firstSeq: 0, roundsDelivered: 1 },
      attempt(),
      () => [Promise.resolve(answered(1)), Promise.resolve(answered(2))],
      turn,
    );
    expect(await ahead.turn).toEqual(turnAt(2));
    expect(turn).toHaveBeenCalledWith([{ outcome: { ok: true, value: 1 } }, { outcome: { ok: true, value: 2 } }]);
  });

  it('takes no turn when a call has no answer: the round that takes them up settles it first', async () => {
    const turn = vi.fn(async () => turnAt(0));
    const retry: CallEnd = { retry: { message: '503', status: 503, failures: 1 } };
    const ahead = callsAhead(
      { firstSeq: 0, roundsDelivered: 1 },
      attempt(),
      () => [Promise.resolve(answered(1)), Promise.resolve(retry)],
      turn,
    );
    expect(await ahead.turn).toBeUndefined();
    expect(turn).not.toHaveBeenCalled();
  });

  it('keeps a failed turn for the round that takes it up, without an unhandled rejection meanwhile', async () => {
    const unhandled = vi.fn();
    process.on('unhandledRejection', unhandled);
    try {
      const ahead = callsAhead(
        { firstSeq: 0, roundsDelivered: 1 },
        attempt(),
        () => [Promise.resolve(answered(1))],
        () => Promise.reject(new Error('the isolate was disposed')),
      );
      await ahead.settled;
      await nextTick();
      expect(unhandled).not.toHaveBeenCalled();
      await expect(ahead.turn).rejects.toThrow('the isolate was disposed');
    } finally {
      process.off('unhandledRejection', unhandled);
    }
  });
});

describe('a live session with calls ahead', () => {
  /** A session the turn ahead has moved on to round 3, its calls started at round 2. */
  function movedOn() {
    const registry = new SessionRegistry({ idleMs: 600_000, maxSessions: 2 });
    const session = { roundsDelivered: 3, dispose: vi.fn() } as unknown as ScriptSession;
    registry.add('s', session, []);
    registry.startAhead('s', () =>
      callsAhead(
        { firstSeq: 5, roundsDelivered: 2 },
        attempt(),
        () => [Promise.resolve(answered(1))],
        async () => turnAt(0),
      ),
    );
    return { registry, session };
  }

  it('is taken up by the fused round the calls were started for, at the round they answer', async () => {
    const { registry, session } = movedOn();
    expect(takeLiveSession(registry, 's', 2, true).session).toBe(session);
    await registry.close();
  });

  it('is lost to anything else: another round count, or a taker that would deliver other outcomes', async () => {
    for (const [roundsDelivered, takesAhead] of [
      [3, true],
      [2, false],
      [3, false],
    ] as const) {
      const { registry, session } = movedOn();
      expect(() => takeLiveSession(registry, 's', roundsDelivered, takesAhead)).toThrow(
        expect.objectContaining({ type: INTERNAL_FAILURES.SessionLost }),
      );
      expect(session.dispose).toHaveBeenCalled();
      await registry.close();
    }
  });
});
