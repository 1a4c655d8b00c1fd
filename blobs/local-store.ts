/** The embedded default: blobs and records as files under <dataDir>/blobs, written atomically. */
import { randomUUID } from 'node:crypto';
import { link, mkdir, readdir, readFile, rename, rm, stat, unlink, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { BlobRef } from '../core/journal.ts';
import {
  BlobMissingError,
  type BlobStore,
  checkRecordFolder,
  checkRecordName,
  contentAddress,
  verified,
} from './store.ts';

export class LocalBlobStore implements BlobStore {
  readonly location: string;

  constructor(directory: string) {
    this.location = directory;
  }

  async put(bytes: Buffer): Promise<BlobRef> {
    const ref = { blob: contentAddress(bytes), bytes: bytes.length };
    const file = this.fileOf(ref);
    const exists = await stat(file).then(
      (s) => s.size === bytes.length,
      () => false,
    );
    if (!exists) {
      const temp = await this.written(file, bytes);
      await rename(temp, file);
    }
    return ref;
  }

  async get(ref: BlobRef): Promise<Buffer> {
    let bytes: Buffer;
    try {
      bytes = await readFile(this.fileOf(ref));
    } catch (e) {
      throw new BlobMissingError(ref, this.location, e);
    }
    return verified(ref, bytes, this.location);
  }

  async putRecord(name: string, bytes: Buffer, options: { ifAbsent?: boolean } = {}): Promise<boolean> {
    const file = this.recordFile(name);
    const temp = await this.written(file, bytes);
    if (!options.ifAbsent) {
      await rename(temp, file);
      return true;
    }
    // link() creates the name only if it does not exist yet, and only ever with the whole content.
    try {
      await link(temp, file);
      return true;
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'EEXIST') return false;
      throw e;
    } finally {
      await unlink(temp);
    }
  }

  async getRecord(name: string): Promise<Buffer | undefined> {
    try {
      return await readFile(this.recordFile(name));
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
      throw e;
    }
  }

  async deleteRecords(folder: string): Promise<number> {
    const dir = join(this.location, 'records', checkRecordFolder(folder));
    let names: string[];
    try {
      names = await readdir(dir, { recursive: true });
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'ENOENT') return 0;
      throw e;
    }
    let files = 0;
    for (const name of names) if ((await stat(join(dir, name))).isFile()) files++;
    await rm(dir, { recursive: true, force: true });
    return files;
  }

  /** Writes `bytes` to a fresh temporary file beside `file`, so a crash never leaves a partial file under the real name. */
  private async written(file: string, bytes: Buffer): Promise<string> {
    await mkdir(join(file, '..'), { recursive: true });
    const temp = `${file}.${randomUUID()}.tmp`;
    await writeFile(temp, bytes);
    return temp;
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
