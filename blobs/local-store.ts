/** The embedded default: blobs as files under <dataDir>/blobs, written atomically. */
import { mkdir, readFile, rename, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { BlobRef } from '../core/journal.ts';
import { BlobMissingError, type BlobStore, contentAddress, verified } from './store.ts';

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
      await mkdir(join(file, '..'), { recursive: true });
      // Write then rename, so a crash mid-write never leaves a truncated blob under the real name.
      const temp = `${file}.${process.pid}.${Date.now()}.tmp`;
      await writeFile(temp, bytes);
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

  private fileOf(ref: BlobRef): string {
    if (!/^sha256-[0-9a-f]{64}$/.test(ref.blob)) throw new Error(`not a blob reference: ${JSON.stringify(ref.blob)}`);
    // Two levels of fan-out keep directories small for millions of blobs.
    return join(this.location, ref.blob.slice(7, 9), ref.blob.slice(9, 11), ref.blob);
  }
}
