/**
 * The live sandbox sessions of this worker process. A session lives here between rounds so the
 * next round is a function call, not a replay; anything that makes it unusable (idle too long,
 * too many sessions, a round delivered out of order) just drops it, and the workflow falls back
 * to replaying the journal in a fresh session.
 */
import type { ScriptSession } from '../sandbox/session.ts';

export interface SessionRegistryOptions {
  /** Sessions idle longer than this are disposed (a job sleeping for hours should not pin an isolate). */
  idleMs: number;
  /** At most this many live sessions; the least recently used is dropped first. */
  maxSessions: number;
}

interface Entry {
  session: ScriptSession;
  lastUsed: number;
}

export class SessionRegistry {
  private readonly entries = new Map<string, Entry>();
  private readonly options: SessionRegistryOptions;
  private readonly sweeper: NodeJS.Timeout;

  constructor(options: SessionRegistryOptions) {
    this.options = options;
    this.sweeper = setInterval(() => this.sweep(), Math.min(options.idleMs, 30_000));
    this.sweeper.unref();
  }

  add(id: string, session: ScriptSession): void {
    this.entries.set(id, { session, lastUsed: Date.now() });
    while (this.entries.size > this.options.maxSessions) {
      const oldest = [...this.entries.entries()].sort((a, b) => a[1].lastUsed - b[1].lastUsed)[0]!;
      this.remove(oldest[0]);
    }
  }

  /** Takes the session out while a round runs, so two deliveries can never interleave. */
  take(id: string): ScriptSession | undefined {
    const entry = this.entries.get(id);
    if (!entry) return undefined;
    this.entries.delete(id);
    return entry.session;
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
