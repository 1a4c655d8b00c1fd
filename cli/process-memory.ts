/**
 * Full garbage collections of the process's heap, when it knows it holds a lot of garbage. Starting
 * `serve` or a worker leaves tens of MB of it in V8's heap (loading modules, parsing the config and
 * the specs, creating the Temporal workers) that V8 may keep committed for as long as the process
 * idles: one last-resort collection once it is ready gives that back, so an idle process holds only
 * what it uses. A worker collects its start-up garbage once it polls: the collection (about 0.1 s)
 * does not delay its first poll. A worker also collects after rounds (afterRound).
 *
 * Node has no call for it: gc() is taken from a fresh context created with it (core/expose-gc.ts),
 * once, before a worker polls and in `serve`, which runs no jobs.
 */
import v8 from 'node:v8';
import vm from 'node:vm';
import { withGcExposed } from '../core/expose-gc.ts';

/**
 * How much the heap may grow over what the last full collection left before the worker collects
 * again: this, or half of what was left, whichever is more (so a worker holding much pays no more
 * collections per MB it allocates than one holding little). V8 sets its next full collection by the
 * heap it last found live: after a job's large round (the 100,000-row import's parsed sheet) it let
 * the small rounds' garbage pile up, 35 MB over that import, to the end of the job.
 */
export const HEAP_GROWTH_BYTES = 16 * 1024 * 1024;

type Gc = (options: object) => void;
let gc: Gc | undefined;
let usedAfterCollection = 0;
let collectionDue = false;

function v8Gc(): Gc {
  gc ??= withGcExposed(() => vm.runInNewContext('gc') as Gc);
  return gc;
}

/** Takes gc() for the collections to come; a worker calls it before it polls, when nothing else can create a context. */
export function takeCollector(): void {
  v8Gc();
}

export function releaseStartupMemory(): void {
  v8Gc()({ type: 'major', execution: 'sync', flavor: 'last-resort' });
  usedAfterCollection = v8.getHeapStatistics().used_heap_size;
}

/**
 * A worker's activity is through with a round: the process collects in full (once the activity has
 * returned, its result on its way) after a round that moved large values, or once the heap has grown
 * by HEAP_GROWTH_BYTES (or half its size) since the last full collection. takeCollector has taken
 * gc() by then.
 */
export function afterRound(large: boolean): void {
  if (collectionDue) return;
  const growth = v8.getHeapStatistics().used_heap_size - usedAfterCollection;
  if (!large && growth < Math.max(HEAP_GROWTH_BYTES, usedAfterCollection / 2)) return;
  collectionDue = true;
  setImmediate(() => {
    collectionDue = false;
    v8Gc()({ type: 'major', execution: 'sync' });
    usedAfterCollection = v8.getHeapStatistics().used_heap_size;
  });
}
