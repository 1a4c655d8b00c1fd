/**
 * Memory settings of the worker that take effect only when a process starts:
 * - The size of V8's young generation. Node sizes it by the machine's memory (64 MiB semi-spaces on
 *   a host with 16 GiB or more), and a worker running jobs grows it to that and keeps it committed:
 *   128 MiB of RSS for short-lived objects, more than the worker's whole live heap.
 * - glibc's malloc arenas (MALLOC_ARENA_MAX). By default glibc gives threads up to 8 per core; the
 *   sandboxes' threads, the thread pool's and the Temporal core's each take one, and their freed
 *   memory, fragmented across them, is not given back: the 100,000-row import's RSS crept 20–45 MB
 *   over the job with the default, not at all with 2 (bench/README.md), at the same speed.
 * The commands that run a worker (`worker`, and `dev`, which runs one in its process) take both by
 * re-executing themselves once, before they load anything else (process.execve keeps the process
 * id, its output and its environment, so a supervisor, a container runtime or a test harness still
 * sees one process and signals it as before). The launcher and the Docker image give both at start.
 *
 * A cap the operator gave (--max-semi-space-size in NODE_OPTIONS or on Node's command line, or
 * MALLOC_ARENA_MAX in the environment) is kept. Where process.execve is missing (Node before 22.15
 * or 23.11, Windows), the worker runs with Node's and the C library's defaults; C libraries other
 * than glibc ignore MALLOC_ARENA_MAX.
 */

/**
 * MiB per semi-space (the young generation holds two): what Node gives a process with a 2 GiB heap
 * limit. Measured on the 100,000-row import (bench/README.md): no more worker CPU than with 64.
 */
export const WORKER_SEMI_SPACE_MB = 8;

const FLAG = '--max-semi-space-size';

/** The Node flag that caps it, for whoever starts a worker process. */
export const WORKER_NODE_FLAG = `${FLAG}=${WORKER_SEMI_SPACE_MB}`;

/** glibc malloc arenas of a worker process (see above). */
export const WORKER_MALLOC_ARENAS = 2;

/** The environment a worker process starts with, for whoever starts one: the operator's own value kept. */
export function workerEnv(env: NodeJS.ProcessEnv = process.env): NodeJS.ProcessEnv {
  return { ...env, MALLOC_ARENA_MAX: env.MALLOC_ARENA_MAX ?? String(WORKER_MALLOC_ARENAS) };
}

/** Re-executes this process with the worker's memory settings, unless it has them; returns only if it does not re-execute. */
export function capWorkerMemory(): void {
  const given = [...process.execArgv, ...(process.env.NODE_OPTIONS ?? '').split(/\s+/)];
  const capped = given.some(
    (arg) => arg === FLAG || arg.startsWith(`${FLAG}=`) || arg.startsWith('--max_semi_space_size'),
  );
  if ((capped && process.env.MALLOC_ARENA_MAX !== undefined) || typeof process.execve !== 'function') return;
  const [node, script, ...args] = process.argv;
  const flags = capped ? process.execArgv : [...process.execArgv, WORKER_NODE_FLAG];
  process.execve(process.execPath, [node, ...flags, script, ...args], workerEnv());
}
