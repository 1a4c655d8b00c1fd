/**
 * The live sandbox sessions of this worker process. A session lives here between rounds so the
 * next round is a function call, not a replay; anything that makes it unusable (idle too long,
 * too many sessions, a round delivered out of order) just drops it, and the workflow falls back
 * to replaying the journal in a fresh session.
 *
 * It also bounds what the worker holds at once (worker.maxConcurrentSessions): sandboxes running a
 * round plus idle ones stay within the limit. Idle sessions make room first (their jobs replay
 * later); when every slot runs a round, the next round waits its turn. A session that finished a
 * round moments ago is not idle yet: its job's next round is on its way, and dropping it would make
 * that job replay only to lose its new session the same way (with more jobs than slots, no job
 * would progress). Such sessions may take the worker over the limit for NEXT_ROUND_GRACE_MS.
 */
import type { EffectOutcome, EffectRequest, PlannedEffect, RoundReport, StepRecord } from '../core/journal.ts';
import type { ScriptSession } from '../sandbox/session.ts';
import type { AheadRound } from './ahead.ts';

/** An effect a live session waits on, as the sandbox asked for it (request bodies inline). */
export interface WaitedEffect {
  request: EffectRequest;
  key: string;
  label: string;
  /** Known from a resumed job's previous journal: delivered without running. */
  prefilled?: EffectOutcome;
}

/** A report with what of it goes to history made ready (activities/index.ts prepare). */
export interface PreparedReport {
  report: RoundReport;
  waitingOn: WaitedEffect[];
  /** The steps as history gets them. */
  steps: StepRecord[];
  /** The effects as history gets them, for a job without privacy (with privacy on, plan tokenizes them first). */
  effects?: PlannedEffect[];
}

/** A live session taken out of the registry for a round: the sandbox and the effects of its last report. */
export interface LiveSession {
  session: ScriptSession;
  waitingOn: WaitedEffect[];
  /** The calls of `waitingOn`, already started by the round before (ahead.ts). */
  ahead?: AheadRound;
}

export interface SessionRegistryOptions {
  /** Sessions idle longer than this are disposed (a job sleeping for hours should not pin an isolate). */
  idleMs: number;
  /** At most this many live sessions, idle or running a round; the least recently used idle one is dropped first. */
  maxSessions: number;
}

/** How often a round waiting for a slot calls `onWait` (an activity heartbeat; see HEARTBEAT_EVERY_MS). */
const WAIT_BEAT_MS = 500;

/**
 * How long after its round a session is kept for its job's next one, whatever the limit: the next
 * round arrives within a workflow task and the session queue's pickup timeout (a few seconds) unless
 * the job waits (a sleep, a human), and then the session is idle.
 */
const NEXT_ROUND_GRACE_MS = 10_000;

interface Entry extends LiveSession {
  lastUsed: number;
}

export class SessionRegistry {
  private readonly entries = new Map<string, Entry>();
  private readonly options: SessionRegistryOptions;
  private readonly sweeper: NodeJS.Timeout;
  /** Rounds running now; each holds a slot. */
  private running = 0;
  /** Rounds waiting for a slot, first come first served; a released slot passes straight to the first. */
  private readonly waiting: Array<() => void> = [];
  /** Calls started ahead and not yet settled, wherever their sessions went: stopped and awaited on close. */
  private readonly aheads = new Set<AheadRound>();
  /** The most rounds that ran at once (for tests and benchmarks). */
  peakRunning = 0;

  constructor(options: SessionRegistryOptions) {
    this.options = options;
    this.sweeper = setInterval(() => this.sweep(), Math.min(options.idleMs, 30_000));
    this.sweeper.unref();
  }

  /** Keeps a live session between rounds, with the effects its last report waits on. */
  add(id: string, session: ScriptSession, waitingOn: WaitedEffect[]): void {
    this.entries.set(id, { session, waitingOn, lastUsed: Date.now() });
    const idle = this.idle();
    while (idle.length > 0 && this.entries.size > this.options.maxSessions) this.remove(idle.shift()![0]);
  }

  /**
   * Runs one round (opening a session, or advancing session `keep`) in a slot of its own, waiting
   * for one when all run rounds. Idle sessions other than `keep` are dropped to make room.
   */
  async withSlot<T>(keep: string | undefined, round: () => Promise<T>, onWait?: () => void): Promise<T> {
    if (this.running >= this.options.maxSessions) {
      const beat = onWait && setInterval(onWait, WAIT_BEAT_MS);
      await new Promise<void>((resolve) => this.waiting.push(resolve));
      clearInterval(beat);
    } else {
      this.running++;
    }
    this.peakRunning = Math.max(this.peakRunning, this.running);
    const idle = this.idle().filter(([id]) => id !== keep);
    while (idle.length > 0 && idle.length + this.running > this.options.maxSessions) this.remove(idle.shift()![0]);
    try {
      return await round();
    } finally {
      const next = this.waiting.shift();
      if (next) next();
      else this.running--;
    }
  }

  /** Starts the calls live session `id` waits on ahead of its next round (ahead.ts), if it is here. */
  startAhead(id: string, start: (waitingOn: WaitedEffect[]) => AheadRound): boolean {
    const entry = this.entries.get(id);
    if (!entry) return false;
    const ahead = start(entry.waitingOn);
    entry.ahead = ahead;
    this.aheads.add(ahead);
    void ahead.settled.finally(() => this.aheads.delete(ahead));
    return true;
  }

  /** Takes the session out while a round runs, so two deliveries can never interleave. */
  take(id: string): LiveSession | undefined {
    const entry = this.entries.get(id);
    if (!entry) return undefined;
    this.entries.delete(id);
    return { session: entry.session, waitingOn: entry.waitingOn, ...(entry.ahead ? { ahead: entry.ahead } : {}) };
  }

  remove(id: string): void {
    this.entries.get(id)?.session.dispose();
    this.entries.delete(id);
  }

  get size(): number {
    return this.entries.size;
  }

  /** Whether any session is live here: kept between rounds, or out for a round that runs now. */
  get holding(): boolean {
    return this.entries.size > 0 || this.running > 0;
  }

  /**
   * Disposes every session. Calls started ahead that were not sent are not; those sent get their
   * grace to land, and their outcome records are written before this resolves (a worker that
   * exited first would leave them uncertain).
   */
  async close(): Promise<void> {
    clearInterval(this.sweeper);
    for (const id of [...this.entries.keys()]) this.remove(id);
    const aheads = [...this.aheads];
    for (const ahead of aheads) ahead.attempt.cancel(new Error('the worker is shutting down'));
    await Promise.allSettled(aheads.map((a) => a.settled));
  }

  /** Sessions no round is about to use, least recently used first. */
  private idle(): Array<[string, Entry]> {
    const cutoff = Date.now() - NEXT_ROUND_GRACE_MS;
    return [...this.entries].filter(([, e]) => e.lastUsed < cutoff).sort((a, b) => a[1].lastUsed - b[1].lastUsed);
  }

  private sweep(): void {
    const cutoff = Date.now() - this.options.idleMs;
    for (const [id, entry] of this.entries) if (entry.lastUsed < cutoff) this.remove(id);
  }
}
