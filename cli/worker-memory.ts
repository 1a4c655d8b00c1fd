/**
 * A memory setting of the worker that V8 takes only when a process starts: the size of its young
 * generation. Node sizes it by the machine's memory (64 MiB semi-spaces on a host with 16 GiB or
 * more), and a worker running jobs grows it to that and keeps it committed: 128 MiB of RSS for
 * short-lived objects, more than the worker's whole live heap. The commands that run a worker
 * (`worker`, and `dev`, which runs one in its process) cap it by re-executing themselves once with
 * the flag, before they load anything else (process.execve keeps the process id, its output and
 * its environment, so a supervisor, a container runtime or a test harness still sees one process and
 * signals it as before).
 *
 * A cap the operator gave (--max-semi-space-size in NODE_OPTIONS or on Node's command line) is
 * kept. Where process.execve is missing (Node before 22.15 or 23.11, Windows), the worker runs with
 * Node's sizing.
 */

/**
 * MiB per semi-space (the young generation holds two): what Node gives a process with a 2 GiB heap
 * limit. Measured on the 100,000-row import (bench/README.md): no more worker CPU than with 64.
 */
export const WORKER_SEMI_SPACE_MB = 8;

const FLAG = '--max-semi-space-size';

/** The Node flag that caps it, for whoever starts a worker process. */
export const WORKER_NODE_FLAG = `${FLAG}=${WORKER_SEMI_SPACE_MB}`;

/** Re-executes this process with the young generation capped, unless it already is; returns only if it does not re-execute. */
export function capYoungGeneration(): void {
  const given = [...process.execArgv, ...(process.env.NODE_OPTIONS ?? '').split(/\s+/)];
  if (given.some((arg) => arg === FLAG || arg.startsWith(`${FLAG}=`) || arg.startsWith('--max_semi_space_size')))
    return;
  if (typeof process.execve !== 'function') return;
  const [node, script, ...args] = process.argv;
  process.execve(process.execPath, [node, ...process.execArgv, WORKER_NODE_FLAG, script, ...args]);
}
