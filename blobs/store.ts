/**
 * The blob store: where data too large for workflow history lives (claim check). History keeps a
 * BlobRef; any worker that can reach the store can resolve it.
 *
 * Keys are content addresses (sha256), so a put is idempotent (activity retries and replays
 * write the same key) and every get is verified: a corrupt or missing blob fails loudly with
 * the reference, never silently.
 *
 * Beside blobs, the store keeps named records: small values found by a name rather than by their
 * content (a call's recorded outcome under its idempotency key, a parsed spec under the hash of its
 * source). Every worker and MCP server that shares the store sees them.
 */
import { createHash } from 'node:crypto';
import { ProductError } from '../core/errors.ts';
import type { BlobRef } from '../core/journal.ts';

export interface BlobStore {
  /** Stores `bytes` and returns its reference. */
  put(bytes: Buffer): Promise<BlobRef>;
  /**
   * Returns the bytes of `ref`, or throws BlobMissingError / BlobCorruptError when the store is there
   * but the blob is not (or not intact). Every method throws BlobStoreUnavailableError when the store
   * itself cannot be reached.
   */
  get(ref: BlobRef): Promise<Buffer>;
  /**
   * Stores a record under `name` (see RECORD_NAME). With `ifAbsent`, an existing record is kept and
   * the call returns false: the first writer wins, whatever the others wrote.
   */
  putRecord(name: string, bytes: Buffer, options?: { ifAbsent?: boolean }): Promise<boolean>;
  /** The record's bytes, or undefined when there is none. */
  getRecord(name: string): Promise<Buffer | undefined>;
  /** Deletes every record in `folder` (a name ending in `/`, e.g. `vault/alice/`); returns how many there were. */
  deleteRecords(folder: string): Promise<number>;
  /** Where the blobs are, for messages (a directory, a bucket URL). */
  readonly location: string;
}

/** Record names are relative paths of plain segments (`outcomes/job-1/3`): no `..`, no leading slash. */
export const RECORD_NAME = /^(?!.*(?:^|\/)\.{1,2}(?:\/|$))[A-Za-z0-9._:@=+-]+(?:\/[A-Za-z0-9._:@=+-]+)*$/;

/** `name` if it is a record name, else throws. */
export function checkRecordName(name: string): string {
  if (!RECORD_NAME.test(name)) {
    throw new Error(
      `not a record name: ${JSON.stringify(name)} (use path segments of letters, digits and . _ : @ = + -)`,
    );
  }
  return name;
}

/** `folder` if it is a folder of records (a record name followed by `/`), else throws. */
export function checkRecordFolder(folder: string): string {
  if (!folder.endsWith('/') || !RECORD_NAME.test(folder.slice(0, -1))) {
    throw new Error(
      `not a folder of records: ${JSON.stringify(folder)} (a record name ending in "/", e.g. "vault/alice/")`,
    );
  }
  return folder;
}

export class BlobMissingError extends ProductError {
  constructor(ref: BlobRef, location: string, cause?: unknown) {
    super(
      'BlobMissingError',
      `blob ${ref.blob} (${ref.bytes} bytes) is missing from the blob store at ${location}; it holds journaled data the job needs and cannot be recomputed. Restore it, or point every worker at the same blob store.`,
      { cause },
    );
  }
}

/**
 * The store itself cannot be reached: its directory is gone or unreadable, the disk fails, the S3
 * server does not answer or refuses. Unlike a missing or corrupt blob this heals, so activities wait
 * for it (activities/blob-store-waits.ts) and jobs continue once the store is back.
 */
export class BlobStoreUnavailableError extends ProductError {
  constructor(location: string, action: string, reason: string, todo: string, cause?: unknown) {
    super(
      'BlobStoreUnavailableError',
      `could not ${action} in the blob store ${location}: ${reason}. ${todo} Running jobs wait for it and continue once it is back.`,
      { cause },
    );
  }
}

export class BlobCorruptError extends ProductError {
  constructor(ref: BlobRef, location: string, got: string) {
    super(
      'BlobCorruptError',
      `blob ${ref.blob} in ${location} is corrupt (its content hashes to ${got}); the job's journaled data cannot be trusted. Restore the blob from a backup.`,
    );
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
