/**
 * Full garbage collections of the process's heap, when it knows it has just dropped a lot. Starting
 * `serve` or a worker leaves tens of MB of garbage in V8's heap (loading modules, parsing the config
 * and the specs, creating the Temporal workers) that V8 may keep committed for as long as the
 * process idles: one last-resort collection once it is ready gives that back, so an idle process
 * holds only what it uses. A worker also collects after a round that moved large values through a
 * sandbox (sandbox/session.ts LARGE_ROUND_CHARS). Node has no call for it: --expose-gc is on just
 * long enough to take gc() from a fresh context, once, before a worker polls (a context created
 * meanwhile would get gc() too) and in `serve`, which runs no jobs. A worker collects its start-up
 * garbage once it polls: the collection (about 0.1 s) does not delay its first poll.
 */
import v8 from 'node:v8';
import vm from 'node:vm';

type Gc = (options: object) => void;
let gc: Gc | undefined;

function v8Gc(): Gc {
  if (!gc) {
    v8.setFlagsFromString('--expose-gc');
    gc = vm.runInNewContext('gc') as Gc;
    v8.setFlagsFromString('--no-expose-gc');
  }
  return gc;
}

/** Takes gc() for the collections to come; a worker calls it before it polls, when nothing else can create a context. */
export function takeCollector(): void {
  v8Gc();
}

export function releaseStartupMemory(): void {
  v8Gc()({ type: 'major', execution: 'sync', flavor: 'last-resort' });
}

/** One full collection (a worker's, after a large round; takeCollector has taken gc() by then). */
export function collectGarbage(): void {
  v8Gc()({ type: 'major', execution: 'sync' });
}
