/**
 * Blobs in an S3-compatible bucket (AWS S3, MinIO, ...), shared by every worker so any worker can
 * replay any job. Keys are `${prefix}${content address}`.
 */
import { GetObjectCommand, NoSuchKey, PutObjectCommand, S3Client, S3ServiceException } from '@aws-sdk/client-s3';
import type { BlobRef } from '../core/journal.ts';
import { BlobMissingError, type BlobStore, contentAddress, verified } from './store.ts';

export interface S3BlobStoreOptions {
  bucket: string;
  prefix: string;
  /** An S3-compatible server; without it the SDK uses AWS_ENDPOINT_URL_S3, else AWS S3. */
  endpoint?: string;
  region?: string;
  forcePathStyle?: boolean;
}

export class S3BlobStore implements BlobStore {
  readonly location: string;
  private readonly client: S3Client;
  private readonly bucket: string;
  private readonly prefix: string;

  constructor(options: S3BlobStoreOptions, env: NodeJS.ProcessEnv = process.env) {
    const endpoint = options.endpoint ?? env.AWS_ENDPOINT_URL_S3 ?? env.AWS_ENDPOINT_URL;
    this.bucket = options.bucket;
    this.prefix = options.prefix;
    this.location = `s3://${options.bucket}/${options.prefix} at ${endpoint ?? 'AWS S3'}`;
    this.client = new S3Client({
      endpoint: options.endpoint,
      // S3-compatible servers ignore the region but the SDK needs one to sign requests.
      region: options.region ?? env.AWS_REGION ?? env.AWS_DEFAULT_REGION ?? 'us-east-1',
      forcePathStyle: options.forcePathStyle ?? endpoint !== undefined,
      // Without timeouts a hung server would hold the activity until its own timeout; the
      // activity's retries then cover what the SDK's own three attempts did not.
      requestHandler: { connectionTimeout: 5_000, requestTimeout: 60_000 },
    });
  }

  async put(bytes: Buffer): Promise<BlobRef> {
    const ref = { blob: contentAddress(bytes), bytes: bytes.length };
    try {
      await this.client.send(
        new PutObjectCommand({
          Bucket: this.bucket,
          Key: this.keyOf(ref),
          Body: bytes,
          // The server checks the upload against the content address, so a blob damaged in
          // transit never lands under its name.
          ChecksumSHA256: Buffer.from(ref.blob.slice('sha256-'.length), 'hex').toString('base64'),
          // Content addressing makes an existing object the same bytes: keep it (no new version).
          IfNoneMatch: '*',
        }),
      );
    } catch (e) {
      if (!(e instanceof S3ServiceException && e.$metadata.httpStatusCode === 412)) throw this.failure('store', ref, e);
    }
    return ref;
  }

  async get(ref: BlobRef): Promise<Buffer> {
    let bytes: Buffer;
    try {
      const object = await this.client.send(new GetObjectCommand({ Bucket: this.bucket, Key: this.keyOf(ref) }));
      bytes = Buffer.from(await object.Body!.transformToByteArray());
    } catch (e) {
      if (e instanceof NoSuchKey) throw new BlobMissingError(ref, this.location, e);
      throw this.failure('read', ref, e);
    }
    return verified(ref, bytes, this.location);
  }

  /** Any other failure (server down, no bucket, no access) may pass: the activity retries it. */
  private failure(action: string, ref: BlobRef, e: unknown): Error {
    const err = e as Error & { code?: string };
    const reason =
      e instanceof S3ServiceException
        ? `the server answered ${e.$metadata.httpStatusCode ?? ''} ${e.name}: ${e.message}`
        : `the server is unreachable (${err.code ?? err.name}: ${err.message})`;
    return new Error(
      `could not ${action} blob ${ref.blob} in the blob store ${this.location}: ${reason}. ` +
        'Check that the S3 server is running and reachable, that the bucket exists and that AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY grant access; the activity will retry.',
      { cause: e },
    );
  }

  /** Keys are opaque to S3 (no path traversal), and a key that is not a content address fails verification. */
  private keyOf(ref: BlobRef): string {
    return `${this.prefix}${ref.blob}`;
  }
}
