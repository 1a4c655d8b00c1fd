/**
 * One attempt of an activity, as the call path sees it (activities/calls.ts): where it stands among
 * the attempts at the same calls, whether it has been cancelled, and whether it may already have
 * been given up by Temporal, so a stale attempt (a worker frozen with SIGSTOP, a GC pause, a laptop
 * lid, then thawed) never sends anything.
 *
 * Temporal gives up an attempt that has not heartbeated within its heartbeat timeout and starts
 * another. This process cannot ask the server whether that happened before each send, but it can
 * notice that it was not running: the attempt heartbeats every HEARTBEAT_EVERY_MS, so a gap between
 * beats longer than the heartbeat timeout (less the SDK's heartbeat throttling) means the process
 * was frozen or starved long enough for the server to have moved on. The gap is remembered
 * (Liveness): after a thaw the first beat may run before the code that checks, and must not hide it.
 */
import { ApplicationFailure, Context, heartbeat } from '@temporalio/activity';
import type { AttemptToken } from '../core/call-records.ts';
import { INTERNAL_FAILURES } from '../core/errors.ts';
import { HEARTBEAT_THROTTLE_MS } from '../core/timeouts.ts';

/** How often an attempt heartbeats (the SDK sends at most one per throttle interval; see HEARTBEAT_THROTTLE_MS). */
export const HEARTBEAT_EVERY_MS = 500;

/** Slack for timers firing late on a busy machine. */
const STALL_MARGIN_MS = 250;
/** Slack for the worker's clock against the Temporal server's. */
const CLOCK_SKEW_MARGIN_MS = 2_000;

/**
 * Whether the process kept running under an attempt: beats come every HEARTBEAT_EVERY_MS, so a gap
 * longer than `staleAfterMs` means it stalled. A stall is kept for good: on a thawed process the
 * event loop may run a beat before the call that would have seen the gap (bench:freeze caught a
 * thawed worker starting the next round's calls ahead after its round had been given up).
 */
export class Liveness {
  private readonly staleAfterMs: number;
  private readonly now: () => number;
  private last: number;
  private stalledMs: number | undefined;

  /** `stalledMs`: a stall seen before (by the attempt this one was detached from). */
  constructor(staleAfterMs: number, stalledMs?: number, now: () => number = () => performance.now()) {
    this.staleAfterMs = staleAfterMs;
    this.now = now;
    this.last = now();
    this.stalledMs = stalledMs;
  }

  beat(): void {
    const now = this.now();
    this.note(now - this.last);
    this.last = now;
  }

  /** The longest stall so far, counting the time since the last beat; undefined if none. */
  stall(): number | undefined {
    this.note(this.now() - this.last);
    return this.stalledMs;
  }

  private note(gap: number): void {
    if (gap > this.staleAfterMs) this.stalledMs = Math.max(this.stalledMs ?? 0, gap);
  }
}

function assertLive(liveness: Liveness): void {
  const stall = liveness.stall();
  if (stall !== undefined) throw staleAttempt(`it did not run for ${Math.round(stall)} ms`);
}

export interface CallAttempt {
  readonly token: AttemptToken;
  /** Aborted when Temporal cancels the activity: the job was cancelled, the attempt timed out, the worker shuts down. */
  readonly signal: AbortSignal;
  /** After `signal` aborts, how long calls already sent may take to land. */
  readonly cancelGraceMs: number;
  /** Throws a stale-attempt failure if Temporal may already have given this attempt up. */
  assertCurrent(): void;
}

/** A superseded attempt: it sends nothing. Retryable, though Temporal has normally moved on already. */
export function staleAttempt(reason: string): ApplicationFailure {
  return ApplicationFailure.retryable(
    `this attempt may have been superseded (${reason}); it sent nothing`,
    INTERNAL_FAILURES.StaleAttempt,
  );
}

/**
 * Throws a stale-attempt failure if Temporal must already have given the activity attempt running
 * now up, judging by when it was scheduled: a task that can wait at most `pickupTimeoutMs` to start
 * and must then heartbeat within its heartbeat timeout (e.g. one a frozen worker's open poll took,
 * run on thaw). Call it as the activity starts.
 */
export function assertNotExpired(pickupTimeoutMs: number): void {
  const { currentAttemptScheduledTimestampMs: scheduledAt, heartbeatTimeoutMs } = Context.current().info;
  const age = Date.now() - scheduledAt;
  if (heartbeatTimeoutMs && age > pickupTimeoutMs + heartbeatTimeoutMs + CLOCK_SKEW_MARGIN_MS)
    throw staleAttempt(`it was scheduled ${Math.round(age / 1000)} s ago`);
}

/** The activity attempt running now (from the activity Context). */
export class ActivityAttempt implements CallAttempt {
  readonly token: AttemptToken;
  readonly signal: AbortSignal;
  readonly cancelGraceMs: number;
  private readonly context = Context.current();
  private readonly staleAfterMs: number;
  private readonly liveness: Liveness;

  constructor(jobAttempt: number, cancelGraceMs: number) {
    const { info } = this.context;
    this.token = { job: jobAttempt, scheduledAt: info.currentAttemptScheduledTimestampMs };
    this.signal = this.context.cancellationSignal;
    this.cancelGraceMs = cancelGraceMs;
    this.staleAfterMs =
      info.heartbeatTimeoutMs === undefined || info.heartbeatTimeoutMs === 0
        ? Infinity
        : info.heartbeatTimeoutMs - HEARTBEAT_THROTTLE_MS - STALL_MARGIN_MS;
    this.liveness = new Liveness(this.staleAfterMs);
  }

  /**
   * Heartbeats while `work` runs, so Temporal notices a dead worker within the heartbeat timeout and
   * cancellation reaches us. The first beat comes after HEARTBEAT_EVERY_MS, not at once: the SDK
   * sends a first heartbeat to the server immediately, and most rounds end before it would be due,
   * so beating at the start cost every round a server write (a third of its server CPU, `npm run bench`).
   */
  async run<T>(work: () => Promise<T>): Promise<T> {
    this.liveness.beat();
    const timer = setInterval(() => {
      this.liveness.beat();
      heartbeat();
    }, HEARTBEAT_EVERY_MS);
    try {
      return await work();
    } finally {
      clearInterval(timer);
    }
  }

  assertCurrent(): void {
    assertLive(this.liveness);
    const details = this.context.cancellationDetails;
    if (this.signal.aborted && details && !details.cancelRequested && !details.workerShutdown)
      throw staleAttempt(
        `Temporal cancelled it: ${(this.signal.reason as Error | undefined)?.message ?? 'no reason given'}`,
      );
  }

  /** Whether calls may still be sent under this attempt (assertCurrent would not throw). */
  isCurrent(): boolean {
    try {
      this.assertCurrent();
      return true;
    } catch {
      return false;
    }
  }

  /** Whether the job itself was cancelled (not a time-out or a worker shutdown). */
  get jobCancelled(): boolean {
    return this.signal.aborted && this.context.cancellationDetails?.cancelRequested === true;
  }

  /** An attempt for calls this one starts and leaves running when it ends (see DetachedAttempt). */
  detach(): DetachedAttempt {
    return new DetachedAttempt({
      token: this.token,
      cancelGraceMs: this.cancelGraceMs,
      staleAfterMs: this.staleAfterMs,
      stalledMs: this.liveness.stall(),
    });
  }
}

/**
 * Calls an attempt starts for the round after its own, before the workflow has asked for them
 * (activities/ahead.ts). They outlive the activity, so they carry its token (a newer attempt at the
 * same calls still wins) and a cancellation of their own, which the activity that takes them up
 * passes on. Until then they tick as the activity beat, so a process frozen or starved past the
 * heartbeat timeout (when Temporal may have sent the round elsewhere) finds them stale on thaw.
 */
export class DetachedAttempt implements CallAttempt {
  readonly token: AttemptToken;
  readonly cancelGraceMs: number;
  private readonly controller = new AbortController();
  private readonly liveness: Liveness;
  private readonly ticker = setInterval(() => this.liveness.beat(), HEARTBEAT_EVERY_MS).unref();
  private adopter?: CallAttempt;

  constructor(from: { token: AttemptToken; cancelGraceMs: number; staleAfterMs: number; stalledMs?: number }) {
    this.token = from.token;
    this.cancelGraceMs = from.cancelGraceMs;
    this.liveness = new Liveness(from.staleAfterMs, from.stalledMs);
  }

  get signal(): AbortSignal {
    return this.controller.signal;
  }

  /** From now on the activity `attempt` answers for these calls: its cancellation and its liveness. */
  adoptBy(attempt: CallAttempt): void {
    this.adopter = attempt;
    this.done();
    if (attempt.signal.aborted) this.cancel(attempt.signal.reason);
    else attempt.signal.addEventListener('abort', () => this.cancel(attempt.signal.reason), { once: true });
  }

  cancel(reason: unknown): void {
    this.controller.abort(reason);
  }

  /** The calls have all ended (or an activity took them up): no more ticks. */
  done(): void {
    clearInterval(this.ticker);
  }

  assertCurrent(): void {
    if (this.adopter) return this.adopter.assertCurrent();
    assertLive(this.liveness);
  }
}
