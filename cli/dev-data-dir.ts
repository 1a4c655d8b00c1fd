/**
 * What `dev` keeps in its data dir besides the blob store: the Temporal dev server's SQLite file and
 * log, and the pid of the server using them, so a second `dev` on the same data dir (or a server
 * left behind by a `dev` that was killed) is named instead of sharing the SQLite file.
 */
import { createHash } from 'node:crypto';
import { mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

export interface DevDataDir {
  dir: string;
  sqlite: string;
  log: string;
  pidFile: string;
}

export function devDataDir(dir: string): DevDataDir {
  mkdirSync(dir, { recursive: true });
  return {
    dir,
    sqlite: join(dir, 'temporal.sqlite'),
    log: join(dir, 'temporal.log'),
    pidFile: join(dir, 'temporal.pid'),
  };
}

/** The pid of a live Temporal server on this data dir's SQLite file, if there is one. */
export function serverUsing(data: DevDataDir): number | undefined {
  let pid: number;
  try {
    pid = Number(readFileSync(data.pidFile, 'utf8').trim());
  } catch {
    return undefined;
  }
  if (!Number.isInteger(pid) || pid <= 0) return undefined;
  try {
    // The pid may have been reused since: only a process running on this very file counts.
    const commandLine = readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0');
    return commandLine.includes(data.sqlite) ? pid : undefined;
  } catch {
    return undefined;
  }
}

export function recordServer(data: DevDataDir, pid: number): void {
  writeFileSync(data.pidFile, `${pid}\n`);
}

export function forgetServer(data: DevDataDir): void {
  rmSync(data.pidFile, { force: true });
}

/** A task queue of this data dir's own, for a `dev` on a shared Temporal server: stable across restarts. */
export function devTaskQueue(base: string, dir: string): string {
  return `${base}-dev-${createHash('sha256').update(dir).digest('hex').slice(0, 8)}`;
}
