/**
 * The blob store: where data too large for workflow history lives (claim check). History keeps a
 * BlobRef; any worker that can reach the store can resolve it.
 *
 * Keys are content addresses (sha256), so a put is idempotent (activity retries and replays
 * write the same key) and every get is verified: a corrupt or missing blob fails loudly with
 * the reference, never silently.
 */
import { createHash } from 'node:crypto';
import type { BlobRef } from '../core/journal.ts';

export interface BlobStore {
  /** Stores `bytes` and returns its reference. */
  put(bytes: Buffer): Promise<BlobRef>;
  /** Returns the bytes of `ref`, or throws BlobMissingError / BlobCorruptError. */
  get(ref: BlobRef): Promise<Buffer>;
  /** Where the blobs are, for messages (a directory, a bucket URL). */
  readonly location: string;
}

export class BlobMissingError extends Error {
  constructor(ref: BlobRef, location: string, cause?: unknown) {
    super(
      `blob ${ref.blob} (${ref.bytes} bytes) is missing from the blob store at ${location}; it holds journaled data the job needs and cannot be recomputed. Restore it, or point every worker at the same blob store.`,
      { cause },
    );
    this.name = 'BlobMissingError';
  }
}

export class BlobCorruptError extends Error {
  constructor(ref: BlobRef, location: string, got: string) {
    super(
      `blob ${ref.blob} in ${location} is corrupt (its content hashes to ${got}); the job's journaled data cannot be trusted. Restore the blob from a backup.`,
    );
    this.name = 'BlobCorruptError';
  }
}

export function contentAddress(bytes: Buffer): string {
  return `sha256-${createHash('sha256').update(bytes).digest('hex')}`;
}

/** Checks a fetched blob against its address. Shared by every store implementation. */
export function verified(ref: BlobRef, bytes: Buffer, location: string): Buffer {
  const got = contentAddress(bytes);
  if (got !== ref.blob) throw new BlobCorruptError(ref, location, got);
  return bytes;
}
