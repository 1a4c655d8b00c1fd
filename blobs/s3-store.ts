/**
 * Blobs in an S3-compatible bucket (AWS S3, MinIO, ...), shared by every worker so any worker can
 * replay any job. Keys are `${prefix}${content address}`.
 *
 * The AWS SDK is loaded on first use: a process whose store is local never loads it (it costs
 * about 15 MB and a few hundred milliseconds of start-up).
 */
import type { S3Client, S3ClientConfig } from '@aws-sdk/client-s3';
import { createHash } from 'node:crypto';
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

export interface S3BlobStoreOptions {
  bucket: string;
  prefix: string;
  /** An S3-compatible server; without it the SDK uses AWS_ENDPOINT_URL_S3, else AWS S3. */
  endpoint?: string;
  region?: string;
  forcePathStyle?: boolean;
}

type S3Sdk = typeof import('@aws-sdk/client-s3');

/** The HTTP status of an S3 error response; undefined when the server did not answer. */
function statusOf(e: unknown): number | undefined {
  return (e as { $metadata?: { httpStatusCode?: number } } | undefined)?.$metadata?.httpStatusCode;
}

export class S3BlobStore implements BlobStore {
  readonly location: string;
  private readonly clientConfig: S3ClientConfig;
  private sdk?: Promise<{ s3: S3Sdk; client: S3Client }>;
  private readonly bucket: string;
  private readonly prefix: string;

  constructor(options: S3BlobStoreOptions, env: NodeJS.ProcessEnv = process.env) {
    const endpoint = options.endpoint ?? env.AWS_ENDPOINT_URL_S3 ?? env.AWS_ENDPOINT_URL;
    this.bucket = options.bucket;
    this.prefix = options.prefix;
    this.location = `s3://${options.bucket}/${options.prefix} at ${endpoint ?? 'AWS S3'}`;
    this.clientConfig = {
      endpoint: options.endpoint,
      // S3-compatible servers ignore the region but the SDK needs one to sign requests.
      region: options.region ?? env.AWS_REGION ?? env.AWS_DEFAULT_REGION ?? 'us-east-1',
      forcePathStyle: options.forcePathStyle ?? endpoint !== undefined,
      // Without timeouts a hung server would hold the activity until its own timeout; the
      // activity's retries then cover what the SDK's own three attempts did not.
      requestHandler: { connectionTimeout: 5_000, requestTimeout: 60_000 },
    };
  }

  /** The SDK and a client, loaded and made on first use. */
  private connect(): Promise<{ s3: S3Sdk; client: S3Client }> {
    return (this.sdk ??= import('@aws-sdk/client-s3').then((s3) => ({
      s3,
      client: new s3.S3Client(this.clientConfig),
    })));
  }

  async put(bytes: Buffer): Promise<BlobRef> {
    const ref = { blob: contentAddress(bytes), bytes: bytes.length };
    const { s3, client } = await this.connect();
    try {
      await client.send(
        new s3.PutObjectCommand({
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
      if (statusOf(e) !== 412) throw this.failure('store', ref, e);
    }
    return ref;
  }

  async get(ref: BlobRef): Promise<Buffer> {
    let bytes: Buffer;
    const { s3, client } = await this.connect();
    try {
      const object = await client.send(new s3.GetObjectCommand({ Bucket: this.bucket, Key: this.keyOf(ref) }));
      bytes = Buffer.from(await object.Body!.transformToByteArray());
    } catch (e) {
      if (e instanceof s3.NoSuchKey) throw new BlobMissingError(ref, this.location, e);
      throw this.failure('read', ref, e);
    }
    return verified(ref, bytes, this.location);
  }

  async putRecord(name: string, bytes: Buffer, options: { ifAbsent?: boolean } = {}): Promise<boolean> {
    const { s3, client } = await this.connect();
    try {
      await client.send(
        new s3.PutObjectCommand({
          Bucket: this.bucket,
          Key: this.recordKey(name),
          Body: bytes,
          ChecksumSHA256: createHash('sha256').update(bytes).digest('base64'),
          ...(options.ifAbsent ? { IfNoneMatch: '*' } : {}),
        }),
      );
      return true;
    } catch (e) {
      if (options.ifAbsent && statusOf(e) === 412) return false;
      throw this.failure('store', `record ${name}`, e);
    }
  }

  async getRecord(name: string): Promise<Buffer | undefined> {
    const { s3, client } = await this.connect();
    try {
      const object = await client.send(new s3.GetObjectCommand({ Bucket: this.bucket, Key: this.recordKey(name) }));
      return Buffer.from(await object.Body!.transformToByteArray());
    } catch (e) {
      if (e instanceof s3.NoSuchKey) return undefined;
      throw this.failure('read', `record ${name}`, e);
    }
  }

  async deleteRecords(folder: string): Promise<number> {
    const prefix = `${this.prefix}records/${checkRecordFolder(folder)}`;
    let deleted = 0;
    const { s3, client } = await this.connect();
    try {
      for (let token: string | undefined; ;) {
        const page = await client.send(
          new s3.ListObjectsV2Command({ Bucket: this.bucket, Prefix: prefix, ContinuationToken: token }),
        );
        const keys = (page.Contents ?? []).flatMap((o) => (o.Key ? [{ Key: o.Key }] : []));
        if (keys.length > 0) {
          await client.send(new s3.DeleteObjectsCommand({ Bucket: this.bucket, Delete: { Objects: keys } }));
          deleted += keys.length;
        }
        token = page.NextContinuationToken;
        if (!token) return deleted;
      }
    } catch (e) {
      throw this.failure('delete', `records ${folder}`, e);
    }
  }

  /**
   * Any failure but a missing key (server down, no bucket, no access) is an outage: it may pass, and
   * activities wait for it.
   */
  private failure(action: string, what: BlobRef | string, e: unknown): BlobStoreUnavailableError {
    const err = e as Error & { code?: string };
    const status = statusOf(e);
    const reason =
      status !== undefined
        ? `the server answered ${status} ${err.name}: ${err.message}`
        : `the server is unreachable (${err.code ?? err.name}: ${err.message})`;
    return new BlobStoreUnavailableError(
      this.location,
      `${action} ${typeof what === 'string' ? what : `blob ${what.blob}`}`,
      reason,
      'Check that the S3 server is running and reachable, that the bucket exists and that AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY grant access.',
      e,
    );
  }

  /** Keys are opaque to S3 (no path traversal), and a key that is not a content address fails verification. */
  private keyOf(ref: BlobRef): string {
    return `${this.prefix}${ref.blob}`;
  }

  private recordKey(name: string): string {
    return `${this.prefix}records/${checkRecordName(name)}`;
  }
}
