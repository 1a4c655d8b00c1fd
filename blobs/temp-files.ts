/**
 * The local store's temporary files: a write fills one, then links or renames it to its name, so no
 * reader ever sees a partial file. They live in a folder of this store's own inside the store
 * (`tmp/<host>-<pid>-<id>`): no two writers ever fill the same file, and a store opened later on
 * this host removes the folders of processes that died mid-write.
 *
 * Creating a file (allocating its inode) is the dear part of a small write on some disks: on the
 * virtual disk of the machine bench/ ran on, 0.15-0.3 ms while its memory was cold, against 0.04 ms
 * to fill, link and unlink a file that exists (bench/README.md, "Spare files"). A round's records
 * are on its critical path, so the folder keeps a few empty files made ahead through the thread
 * pool, off the event loop, and a synchronous write takes one when one is ready.
 */
import { randomUUID } from 'node:crypto';
import { close, mkdirSync, open, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { hostname } from 'node:os';
import { join } from 'node:path';

/** Spare files kept ready; refilled once half are taken. A round writes two records per call. */
const SPARES = 32;

/** Folders of this process's stores, removed when it exits. */
const ownFolders = new Set<string>();
let removeOnExit = false;

export class TempFiles {
  /** This store's folder of temporary files. */
  readonly folder: string;
  private readonly spares: string[] = [];
  private made = 0;
  private refilling = false;

  /** `root`: the folder of every store's temporary files (`<store>/tmp`). */
  constructor(root: string) {
    this.folder = join(root, `${hostname()}-${process.pid}-${randomUUID().slice(0, 8)}`);
    ownFolders.add(this.folder);
    try {
      mkdirSync(this.folder, { recursive: true });
      removeFoldersOfDeadProcesses(root);
    } catch {
      // A store that cannot be written here (read-only, another user's) still reads; a write says why it cannot.
    }
    if (!removeOnExit) {
      removeOnExit = true;
      process.once('exit', () => {
        for (const folder of ownFolders) removeQuietly(folder);
      });
    }
  }

  /**
   * Writes `bytes` into a spare file, when one is ready, and returns its path. It is opened as it is,
   * never truncated: ext4 (auto_da_alloc) flushes a file truncated to nothing when it is closed.
   */
  fillSpare(bytes: Buffer): string | undefined {
    const spare = this.spares.pop();
    if (this.spares.length < SPARES / 2) void this.refill();
    if (spare === undefined) return undefined;
    try {
      writeFileSync(spare, bytes, { flag: 'r+' });
      return spare;
    } catch {
      // Removed with its folder (the store cleared by hand): the caller writes a new file.
      return undefined;
    }
  }

  /** A new temporary file's path (nothing is created). */
  fresh(): string {
    return join(this.folder, String(this.made++));
  }

  /**
   * Makes spare files through the thread pool until SPARES are ready. It never creates the folder:
   * a store whose directory is gone is an outage for the write to report, not a folder to remake.
   */
  private async refill(): Promise<void> {
    if (this.refilling) return;
    this.refilling = true;
    try {
      while (this.spares.length < SPARES) {
        const file = this.fresh();
        await createEmpty(file);
        this.spares.push(file);
      }
    } catch {
      // The folder is gone (the store moved, or cleared by hand): writes make their files as they go.
    } finally {
      this.refilling = false;
    }
  }
}

/** Creates an empty file through the thread pool: two round trips, no FileHandle (fs/promises' writeFile takes three). */
function createEmpty(file: string): Promise<void> {
  return new Promise((resolve, reject) =>
    open(file, 'wx', (opened, fd) =>
      opened ? reject(opened) : close(fd, (closed) => (closed ? reject(closed) : resolve())),
    ),
  );
}

/** Removes the folders left in `root` by processes of this host that are no longer running. */
function removeFoldersOfDeadProcesses(root: string): void {
  const host = hostname();
  for (const name of readdirSync(root)) {
    const match = /^(.+)-(\d+)-[0-9a-f]{8}$/.exec(name);
    if (!match || match[1] !== host) continue;
    const pid = Number(match[2]);
    // One with this process's pid that is not one of its stores' was left by an earlier process (pid 1 in containers).
    if (pid === process.pid ? ownFolders.has(join(root, name)) : isRunning(pid)) continue;
    removeQuietly(join(root, name));
  }
}

/** Removes a folder of temporary files; one that cannot be removed (another user's) stays: empty files and at most one partial write. */
function removeQuietly(folder: string): void {
  try {
    rmSync(folder, { recursive: true, force: true });
  } catch {
    // Nothing of a store's content is in it.
  }
}

function isRunning(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    // EPERM: it runs, as another user.
    return (e as NodeJS.ErrnoException).code === 'EPERM';
  }
}
