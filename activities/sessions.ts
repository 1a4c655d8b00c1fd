/**
 * The live sandbox sessions of this worker process. A session lives here between rounds so the
 * next round is a function call, not a replay; anything that makes it unusable (idle too long,
 * too many sessions, a round delivered out of order) just drops it, and the workflow falls back
 * to replaying the journal in a fresh session.
 *
 * It also bounds what the worker holds at once (worker.maxConcurrentSessions): sandboxes running a
 * round plus idle ones never exceed the limit. Idle sessions make room first (their jobs replay
 * later); when every slot runs a round, the next round waits its turn.
 */
import type { EffectOutcome, EffectRequest } from '../core/journal.ts';
import type { ScriptSession } from '../sandbox/session.ts';

/** An effect a live session waits on, as the sandbox asked for it (request bodies inline). */
export interface WaitedEffect {
  request: EffectRequest;
  key: string;
  label: string;
  /** Known from a resumed job's previous journal: delivered without running. */
  prefilled?: EffectOutcome;
}

/** A live session taken out of the registry for a round: the sandbox and the effects of its last report. */
export interface LiveSession {
  session: ScriptSession;
  waitingOn: WaitedEffect[];
}

export interface SessionRegistryOptions {
  /** Sessions idle longer than this are disposed (a job sleeping for hours should not pin an isolate). */
  idleMs: number;
  /** At most this many live sessions, idle or running a round; the least recently used idle one is dropped first. */
  maxSessions: number;
}

/** How often a round waiting for a slot calls `onWait` (an activity heartbeat; see HEARTBEAT_EVERY_MS). */
const WAIT_BEAT_MS = 500;

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
    while (this.entries.size > this.options.maxSessions) {
      const oldest = [...this.entries.entries()].sort((a, b) => a[1].lastUsed - b[1].lastUsed)[0];
      this.remove(oldest[0]);
    }
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
    const idle = [...this.entries].filter(([id]) => id !== keep).sort((a, b) => a[1].lastUsed - b[1].lastUsed);
    while (idle.length > 0 && idle.length + this.running > this.options.maxSessions) this.remove(idle.shift()![0]);
    try {
      return await round();
    } finally {
      const next = this.waiting.shift();
      if (next) next();
      else this.running--;
    }
  }

  /** Takes the session out while a round runs, so two deliveries can never interleave. */
  take(id: string): LiveSession | undefined {
    const entry = this.entries.get(id);
    if (!entry) return undefined;
    this.entries.delete(id);
    return { session: entry.session, waitingOn: entry.waitingOn };
  }

  remove(id: string): void {
    this.entries.get(id)?.session.dispose();
    this.entries.delete(id);
  }

  get size(): number {
    return this.entries.size;
  }

  close(): void {
    clearInterval(this.sweeper);
    for (const id of [...this.entries.keys()]) this.remove(id);
  }

  private sweep(): void {
    const cutoff = Date.now() - this.options.idleMs;
    for (const [id, entry] of this.entries) if (entry.lastUsed < cutoff) this.remove(id);
  }
}
