/** An attempt notices that its process stalled (frozen, starved) and stays stale once it did: a thawed worker sends nothing. */
import { afterEach, describe, expect, it } from 'vitest';
import { DetachedAttempt, Liveness } from '../../activities/attempt.ts';

const STALE_AFTER_MS = 1_250;

/** A Liveness on a clock the test moves: beats only where the test beats. */
function clocked(stalledMs?: number) {
  let now = 0;
  const liveness = new Liveness(STALE_AFTER_MS, stalledMs, () => now);
  return { liveness, at: (ms: number) => (now = ms) };
}

describe('Liveness', () => {
  it('sees no stall while beats come within staleAfterMs', () => {
    const { liveness, at } = clocked();
    for (let t = 500; t <= 5_000; t += 500) {
      at(t);
      liveness.beat();
    }
    at(6_000);
    expect(liveness.stall()).toBeUndefined();
  });

  it('keeps a stall once seen: the first beat after a thaw does not hide it', () => {
    const { liveness, at } = clocked();
    at(500);
    liveness.beat();
    at(4_500); // frozen for 4 s, then the beat timer runs first
    liveness.beat();
    at(5_000);
    liveness.beat();
    expect(liveness.stall()).toBe(4_000);
  });

  it('counts the time since the last beat as a stall when no beat came yet', () => {
    const { liveness, at } = clocked();
    at(3_000);
    expect(liveness.stall()).toBe(3_000);
  });

  it('starts stale when the attempt it was detached from had stalled', () => {
    const { liveness, at } = clocked(2_000);
    at(100);
    liveness.beat();
    expect(liveness.stall()).toBe(2_000);
  });
});

describe('DetachedAttempt', () => {
  const attempts: DetachedAttempt[] = [];
  afterEach(() => attempts.splice(0).forEach((a) => a.done()));
  const detached = (stalledMs?: number) => {
    const attempt = new DetachedAttempt({
      token: { job: 1, scheduledAt: 0 },
      cancelGraceMs: 0,
      staleAfterMs: STALE_AFTER_MS,
      ...(stalledMs === undefined ? {} : { stalledMs }),
    });
    attempts.push(attempt);
    return attempt;
  };

  it('may send when nothing stalled', () => {
    expect(() => detached().assertCurrent()).not.toThrow();
  });

  it('sends nothing when detached from an attempt that had stalled', () => {
    expect(() => detached(3_000).assertCurrent()).toThrow(/superseded \(it did not run for 3000 ms\)/);
  });
});
