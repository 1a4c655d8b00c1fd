/**
 * Where blobs live: files under <dataDir>/blobs (one machine), or an S3-compatible bucket that every
 * worker shares, so any worker can replay any job. S3 credentials, and the endpoint and region when
 * not set here, come from the AWS SDK's own environment (AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY,
 * AWS_ENDPOINT_URL_S3, AWS_REGION) or its other credential sources (profiles, instance roles).
 */
import { z } from 'zod';
import { configObject } from '../core/config-object.ts';

export const BlobStoreConfig = z.discriminatedUnion('type', [
  configObject({ type: z.literal('local') }),
  configObject({
    type: z.literal('s3'),
    bucket: z.string().min(1),
    /** Prepended to every key (e.g. "durable-codemode/"); keys are `${prefix}sha256-<hex>`. */
    prefix: z.string().default(''),
    /** An S3-compatible server such as MinIO; omit for AWS S3. */
    endpoint: z.url({ protocol: /^https?$/ }).optional(),
    region: z.string().min(1).optional(),
    /** Bucket in the URL path rather than the host name; defaults to true with a custom endpoint (MinIO needs it). */
    forcePathStyle: z.boolean().optional(),
  }),
]);

/** The `blobs` section. */
export const BlobsConfig = configObject({
  /** Values larger than this (JSON bytes) are kept in the blob store, not in workflow history. */
  thresholdBytes: z
    .number()
    .int()
    .min(256)
    .max(1024 * 1024)
    .default(4096),
  store: BlobStoreConfig.default({ type: 'local' }),
}).prefault({});

export type BlobStoreConfig = z.infer<typeof BlobStoreConfig>;
export type BlobsConfig = z.infer<typeof BlobsConfig>;

/**
 * The environment's say: a bucket in DURABLE_CODEMODE_S3_BUCKET switches the store to S3 (the
 * file's other S3 settings still apply); DURABLE_CODEMODE_S3_PREFIX overrides the prefix.
 */
export function applyBlobEnv(blobs: BlobsConfig, env: NodeJS.ProcessEnv): void {
  if (env.DURABLE_CODEMODE_S3_BUCKET) {
    const s3 = blobs.store.type === 's3' ? blobs.store : { prefix: '' };
    blobs.store = { ...s3, type: 's3', bucket: env.DURABLE_CODEMODE_S3_BUCKET };
  }
  if (env.DURABLE_CODEMODE_S3_PREFIX !== undefined && blobs.store.type === 's3')
    blobs.store.prefix = env.DURABLE_CODEMODE_S3_PREFIX;
}
