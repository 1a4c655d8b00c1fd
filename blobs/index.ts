/** The blob store a worker uses, as configured (`blobs.store`). */
import { join } from 'node:path';
import type { Config } from '../server/config.ts';
import { LocalBlobStore } from './local-store.ts';
import { S3BlobStore } from './s3-store.ts';
import type { BlobStore } from './store.ts';

export function createBlobStore(config: Config): BlobStore {
  const { store } = config.blobs;
  return store.type === 's3' ? new S3BlobStore(store) : new LocalBlobStore(join(config.dataDir, 'blobs'));
}
