/**
 * `durable-codemode` processes for the benchmarks (test/harness.ts has the vitest flavour): a
 * worker, or any command that prints a line when it is ready (`serve`), with its memory and CPU
 * read from /proc.
 */
import { spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { COMPILED_ENTRY, compiledUpToDate } from '../cli/compile.ts';
import { WORKER_NODE_FLAG, workerEnv } from '../cli/worker-memory.ts';

/** What the launcher runs: the compiled CLI when it is up to date (`npm run build`), else the sources. */
const CLI = compiledUpToDate() ? COMPILED_ENTRY : fileURLToPath(new URL('../cli/main.ts', import.meta.url));
console.error(`bench: durable-codemode processes run ${CLI}`);
const RSS_SAMPLE_MS = 200;
const START_TIMEOUT_MS = 120_000;

/** A field of /proc/<pid>/status in bytes; undefined once the process is gone. */
function procStatus(pid: number, field: 'VmRSS' | 'VmHWM'): number | undefined {
  let text: string;
  try {
    text = readFileSync(`/proc/${pid}/status`, 'utf8');
  } catch {
    return undefined;
  }
  const kb = new RegExp(`^${field}:\\s+(\\d+) kB`, 'm').exec(text)?.[1];
  return kb === undefined ? undefined : Number(kb) * 1024;
}

export interface WorkerProcess {
  /** performance.now() when it was spawned and when it reported polling (or being ready). */
  spawnedAt: number;
  pollingAt: number;
  /** What it printed so far (stdout and stderr). */
  output(): string;
  /**
   * RSS and peak RSS (the kernel's VmHWM) when it started polling (bundling the workflow code
   * peaks on its own), the largest RSS sample since, and the peak RSS now.
   */
  memory(): { startRss: number; startPeakRss: number; sampledPeakRss: number; peakRss: number };
  /** RSS now. */
  rss(): number;
  /** CPU time (user + system) the process has used so far, in seconds. */
  cpuSeconds(): number;
  kill(signal: NodeJS.Signals): Promise<void>;
  /** Sends a signal without waiting for the process to end (SIGSTOP, SIGCONT). */
  signal(signal: NodeJS.Signals): void;
}

/**
 * `durable-codemode worker` as a child process, like test/harness.ts's spawnWorker (which needs
 * vitest); resolves once it polls.
 */
export function spawnWorker(configFile: string, address: string): Promise<WorkerProcess> {
  return spawnCli(['worker', '--config', configFile], 'worker polling', { TEMPORAL_ADDRESS: address });
}

/**
 * `durable-codemode <args>` (of `cli`, by default this checkout's) as a child process; resolves once
 * its output contains `ready`.
 */
export async function spawnCli(
  args: string[],
  ready: string,
  env: NodeJS.ProcessEnv = {},
  cli = CLI,
): Promise<WorkerProcess> {
  const spawnedAt = performance.now();
  // Node's flags and the environment as the launcher (bin/durable-codemode) gives them.
  const worker = args[0] === 'worker';
  const nodeFlags = ['--no-node-snapshot', ...(worker ? [WORKER_NODE_FLAG] : [])];
  const child = spawn(process.execPath, [...nodeFlags, cli, ...args], {
    env: worker ? workerEnv({ ...process.env, ...env }) : { ...process.env, ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let output = '';
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  const kill = async (signal: NodeJS.Signals) => {
    if (child.exitCode === null && child.signalCode === null) child.kill(signal);
    // A worker that does not stop on SIGTERM within 10 s is killed: the bench must exit by itself.
    const force = setTimeout(() => child.kill('SIGKILL'), 10_000);
    await exited;
    clearTimeout(force);
  };
  let pollingAt = 0;
  try {
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(
        () => reject(new Error(`${args[0]} did not print "${ready}" within ${START_TIMEOUT_MS / 1000} s:\n${output}`)),
        START_TIMEOUT_MS,
      );
      const read = (data: Buffer) => {
        output += data.toString();
        if (!pollingAt && output.includes(ready)) {
          pollingAt = performance.now();
          clearTimeout(timer);
          resolve();
        }
      };
      child.stdout.on('data', read);
      child.stderr.on('data', read);
      child.once('error', reject);
      child.once('exit', (code, signal) => {
        clearTimeout(timer);
        reject(new Error(`${args[0]} exited (${code ?? signal}) before it was ready:\n${output}`));
      });
    });
  } catch (e) {
    await kill('SIGKILL');
    throw e;
  }
  const pid = child.pid!;
  const startRss = procStatus(pid, 'VmRSS') ?? 0;
  const startPeakRss = procStatus(pid, 'VmHWM') ?? 0;
  let sampledPeakRss = startRss;
  const sampler = setInterval(
    () => (sampledPeakRss = Math.max(sampledPeakRss, procStatus(pid, 'VmRSS') ?? 0)),
    RSS_SAMPLE_MS,
  );
  void exited.then(() => clearInterval(sampler));
  return {
    spawnedAt,
    pollingAt,
    output: () => output,
    memory() {
      const peakRss = procStatus(pid, 'VmHWM');
      if (peakRss === undefined)
        throw new Error(`cannot read VmHWM of process ${pid} from /proc: it must still run, on Linux`);
      return { startRss, startPeakRss, sampledPeakRss, peakRss };
    },
    rss() {
      const rss = procStatus(pid, 'VmRSS');
      if (rss === undefined)
        throw new Error(`cannot read VmRSS of process ${pid} from /proc: it must still run, on Linux`);
      return rss;
    },
    cpuSeconds() {
      const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1].split(' ');
      // utime and stime are fields 14 and 15 of /proc/<pid>/stat, in clock ticks (100 per second on Linux).
      return (Number(fields[11]) + Number(fields[12])) / 100;
    },
    kill,
    signal: (signal) => void child.kill(signal),
  };
}
