/** The blob store a process uses, as configured (`blobs.store`). */
import { join } from 'node:path';
import type { BlobsConfig } from './config.ts';
import { LocalBlobStore } from './local-store.ts';
import { S3BlobStore } from './s3-store.ts';
import type { BlobStore } from './store.ts';

/** `dataDir` holds the local store (<dataDir>/blobs) when no S3 bucket is configured. */
export function createBlobStore(blobs: BlobsConfig, dataDir: string): BlobStore {
  const { store } = blobs;
  return store.type === 's3' ? new S3BlobStore(store) : new LocalBlobStore(join(dataDir, 'blobs'));
}
