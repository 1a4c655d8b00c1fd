/**
 * The embedded default: blobs and records as files under <dataDir>/blobs, written atomically.
 *
 * The directory is created when a process opens the store and never again while it runs: if it
 * disappears (moved away, unmounted), that is an outage (BlobStoreUnavailableError, which
 * activities wait out), not an empty store whose blobs are all missing.
 *
 * Small files are written, and small records read, synchronously. A write fills a temporary file
 * (temp-files.ts: one made ahead when one is ready) and renames or links it to its name; through the
 * thread pool each file operation is a round trip costing more than the operation itself, and a
 * round's writes are on its critical path: a call's intent before it is sent, its outcome after,
 * the claim checks of its request and response (bench/README.md, "Records written synchronously").
 * Larger files go through the thread pool, so the event loop never waits on a big write or read.
 */
import {
  linkSync,
  mkdirSync,
  readFileSync,
  renameSync,
  type Stats,
  statSync,
  unlinkSync,
  writeFileSync,
} from 'node:fs';
import { link, mkdir, readdir, readFile, rename, rm, stat, unlink, writeFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import type { BlobRef } from '../core/journal.ts';
import {
  BlobMissingError,
  type BlobStore,
  BlobStoreUnavailableError,
  checkRecordFolder,
  checkRecordName,
  contentAddress,
  verified,
} from './store.ts';
import { TempFiles } from './temp-files.ts';

/** Files up to this size are written, and records read, synchronously (see above; bench/README.md gives what each costs). */
export const SYNC_WRITE_BYTES = 64 * 1024;

/** The file operations a write makes: through the thread pool, or synchronously. */
interface WriteOps {
  writeFile: (file: string, bytes: Buffer) => unknown;
  rename: (from: string, to: string) => unknown;
  link: (existing: string, name: string) => unknown;
  unlink: (file: string) => unknown;
  mkdir: (dir: string) => unknown;
  /** The file's size, or undefined when there is none. */
  size: (file: string) => Promise<number | undefined> | number | undefined;
  /** Why `dir` cannot hold the store, or undefined when it is a directory. */
  directoryProblem: (dir: string) => Promise<string | undefined> | string | undefined;
}

const notADirectory = (s: Stats) => (s.isDirectory() ? undefined : 'it is not a directory');
const missingDirectory = (e: NodeJS.ErrnoException) =>
  e.code === 'ENOENT' ? 'the directory is gone' : `${e.code}: ${e.message}`;

const THREAD_POOL: WriteOps = {
  writeFile,
  rename,
  link,
  unlink,
  mkdir: (dir) => mkdir(dir, { recursive: true }),
  size: (file) =>
    stat(file).then(
      (s) => s.size,
      () => undefined,
    ),
  directoryProblem: (dir) => stat(dir).then(notADirectory, missingDirectory),
};

const SYNCHRONOUS: WriteOps = {
  writeFile: writeFileSync,
  rename: renameSync,
  link: linkSync,
  unlink: unlinkSync,
  mkdir: (dir) => mkdirSync(dir, { recursive: true }),
  size: (file) => statSync(file, { throwIfNoEntry: false })?.size,
  directoryProblem: (dir) => {
    try {
      return notADirectory(statSync(dir));
    } catch (e) {
      return missingDirectory(e as NodeJS.ErrnoException);
    }
  },
};

const opsFor = (bytes: Buffer): WriteOps => (bytes.length <= SYNC_WRITE_BYTES ? SYNCHRONOUS : THREAD_POOL);

export class LocalBlobStore implements BlobStore {
  readonly location: string;
  private readonly temps: TempFiles;

  constructor(directory: string) {
    this.location = directory;
    mkdirSync(directory, { recursive: true });
    this.temps = new TempFiles(join(directory, 'tmp'));
  }

  async put(bytes: Buffer): Promise<BlobRef> {
    const ref = { blob: contentAddress(bytes), bytes: bytes.length };
    const file = this.fileOf(ref);
    const ops = opsFor(bytes);
    await this.guard(`store blob ${ref.blob}`, async () => {
      if ((await ops.size(file)) !== bytes.length)
        await this.placed(ops.rename, await this.written(bytes, ops), file, ops);
    });
    return ref;
  }

  async get(ref: BlobRef): Promise<Buffer> {
    const file = this.fileOf(ref);
    const bytes = await this.guard(
      `read blob ${ref.blob}`,
      () => readFile(file),
      (e) => {
        throw new BlobMissingError(ref, this.location, e);
      },
    );
    return verified(ref, bytes, this.location);
  }

  async putRecord(name: string, bytes: Buffer, options: { ifAbsent?: boolean } = {}): Promise<boolean> {
    const file = this.recordFile(name);
    const ops = opsFor(bytes);
    return this.guard(`store record ${name}`, async () => {
      const temp = await this.written(bytes, ops);
      if (!options.ifAbsent) {
        await this.placed(ops.rename, temp, file, ops);
        return true;
      }
      // link() creates the name only if it does not exist yet, and only ever with the whole content.
      try {
        await this.placed(ops.link, temp, file, ops);
        return true;
      } catch (e) {
        if ((e as NodeJS.ErrnoException).code === 'EEXIST') return false;
        throw e;
      } finally {
        await ops.unlink(temp);
      }
    });
  }

  async getRecord(name: string): Promise<Buffer | undefined> {
    const file = this.recordFile(name);
    return this.guard(
      `read record ${name}`,
      // A small record (an intent, most outcomes) is read as it is written: synchronously.
      async () => (statSync(file).size <= SYNC_WRITE_BYTES ? readFileSync(file) : readFile(file)),
      () => undefined,
    );
  }

  async deleteRecords(folder: string): Promise<number> {
    const dir = join(this.location, 'records', checkRecordFolder(folder));
    return this.guard(
      `delete records ${folder}`,
      async () => {
        const files = (await readdir(dir, { recursive: true, withFileTypes: true })).filter((e) => e.isFile()).length;
        await rm(dir, { recursive: true, force: true });
        return files;
      },
      () => 0,
    );
  }

  /**
   * Runs a file operation in the store. A file that is not there is answered by `absent` (when
   * given) as long as the store's directory is; every other failure, and any while the directory is
   * gone, is an outage. The directory is looked at only when an operation fails: one that worked
   * needed it (a write never creates it, see written()).
   */
  private async guard<T>(action: string, operation: () => Promise<T>, absent?: (e: unknown) => T): Promise<T> {
    try {
      return await operation();
    } catch (e) {
      await this.checkDirectory(action, e);
      const code = (e as NodeJS.ErrnoException).code;
      if (absent && code === 'ENOENT') return absent(e);
      throw new BlobStoreUnavailableError(
        this.location,
        action,
        `${code ?? (e as Error).name}: ${(e as Error).message}`,
        'Check the directory, its permissions and the disk.',
        e,
      );
    }
  }

  /**
   * Throws BlobStoreUnavailableError unless the store's directory is there. A synchronous write looks
   * synchronously: most blobs are the first in their fan-out folder, so this runs for most of a
   * round's claim checks (a thread-pool round trip each was 0.19 ms on the round's critical path).
   */
  private async checkDirectory(action: string, cause?: unknown, ops: WriteOps = THREAD_POOL): Promise<void> {
    const directory = await ops.directoryProblem(this.location);
    if (directory)
      throw new BlobStoreUnavailableError(
        this.location,
        action,
        directory,
        'Restore the directory (or remount its disk).',
        cause,
      );
  }

  /**
   * Writes `bytes` to a temporary file of this store's, so a crash never leaves a partial file under
   * a real name. Its folder is made again when it was removed while the store was there (never the
   * store's own directory: a vanished store is an outage).
   */
  private async written(bytes: Buffer, ops: WriteOps): Promise<string> {
    const spare = ops === SYNCHRONOUS ? this.temps.fillSpare(bytes) : undefined;
    if (spare) return spare;
    const temp = this.temps.fresh();
    try {
      await ops.writeFile(temp, bytes);
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'ENOENT') throw e;
      await this.checkDirectory('create a temporary file', e, ops);
      await ops.mkdir(dirname(temp));
      await ops.writeFile(temp, bytes);
    }
    return temp;
  }

  /**
   * Moves the written `temp` to `file` (`move`: a rename, or a link that keeps the first writer's),
   * creating the file's folder on the first write into it (a job's records, a blob's fan-out).
   */
  private async placed(
    move: (from: string, to: string) => unknown,
    temp: string,
    file: string,
    ops: WriteOps,
  ): Promise<void> {
    try {
      await move(temp, file);
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'ENOENT') throw e;
      await this.checkDirectory(`create the folder of ${file}`, e, ops);
      await ops.mkdir(dirname(file));
      await move(temp, file);
    }
  }

  private recordFile(name: string): string {
    return join(this.location, 'records', checkRecordName(name));
  }

  private fileOf(ref: BlobRef): string {
    if (!/^sha256-[0-9a-f]{64}$/.test(ref.blob)) throw new Error(`not a blob reference: ${JSON.stringify(ref.blob)}`);
    // Two levels of fan-out keep directories small for millions of blobs.
    return join(this.location, ref.blob.slice(7, 9), ref.blob.slice(9, 11), ref.blob);
  }
}
