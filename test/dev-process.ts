/**
 * `durable-codemode dev` as a real child process, in a fresh directory of its own (its data dir
 * below it): for the dev tests and scripts/ui-screenshot.ts. No vitest here, so scripts can use it.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { freePort } from '../temporal/ports.ts';

export const CLI = fileURLToPath(new URL('../cli/main.ts', import.meta.url));

export interface DevProcess {
  child: ChildProcess;
  /** The directory it runs in; its data dir is `.durable-codemode` below. */
  dir: string;
  output(): string;
  /** Its exit code, once it has exited. */
  exited: Promise<number | null>;
  /** Ctrl-C (to its process group, as from its terminal), then its exit code. */
  stop(): Promise<number | null>;
}

/** Starts `dev ARGS`; resolves once it says it runs, or has exited (see `exited`), or after `timeoutMs`. */
export async function startDev(
  args: string[],
  env: Record<string, string> = {},
  config?: object,
  timeoutMs = 120_000,
): Promise<DevProcess> {
  const dir = mkdtempSync(join(tmpdir(), 'dcm-dev-'));
  if (config) writeFileSync(join(dir, 'config.json'), JSON.stringify(config));
  const child = spawn(
    process.execPath,
    ['--no-node-snapshot', CLI, 'dev', ...(config ? ['--config', join(dir, 'config.json')] : []), ...args],
    // No TEMPORAL_ADDRESS from the caller: dev must not need one. A process group of its own, as a
    // terminal gives a command, so stop() can press Ctrl-C the way a terminal does.
    {
      cwd: dir,
      env: { ...process.env, TEMPORAL_ADDRESS: '', ...env },
      stdio: ['ignore', 'pipe', 'pipe'],
      detached: true,
    },
  );
  const leftBehind = () => signalGroup(child, 'SIGKILL');
  process.once('exit', leftBehind);
  let output = '';
  const started = new Promise<void>((resolve) => {
    const read = (d: Buffer) => {
      output += d.toString();
      if (output.includes('dev is running')) resolve();
    };
    child.stdout.on('data', read);
    child.stderr.on('data', read);
  });
  const exited = new Promise<number | null>((resolve) =>
    child.once('exit', (code) => {
      process.removeListener('exit', leftBehind);
      resolve(code);
    }),
  );
  let timer: NodeJS.Timeout | undefined;
  await Promise.race([started, exited, new Promise((resolve) => (timer = setTimeout(resolve, timeoutMs)))]);
  clearTimeout(timer);
  return {
    child,
    dir,
    output: () => output,
    exited,
    async stop() {
      if (child.exitCode === null && child.signalCode === null) signalGroup(child, 'SIGINT');
      return exited;
    },
  };
}

/** Signals the child's whole process group, as a terminal's Ctrl-C does; quiet if it is gone. */
function signalGroup(child: ChildProcess, signal: NodeJS.Signals): void {
  try {
    process.kill(-child.pid!, signal);
  } catch {
    // Already gone.
  }
}

/** `n` distinct ports, each free when picked. */
export async function freePorts(n: number): Promise<number[]> {
  const got = new Set<number>();
  while (got.size < n) got.add(await freePort());
  return [...got];
}
