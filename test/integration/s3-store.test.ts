/**
 * The S3 blob store against a real S3-protocol server on loopback: the run's S3 server when it has
 * one (versitygw of the native cluster, DCM_TEST_CLUSTER=native), else s3rver (HTTP, SigV4
 * checked, objects on disk). Round trips, idempotent puts, a missing and a corrupt object, refused
 * credentials, a server that is down, and jobs on the real worker whose large step values live in
 * the bucket. (The no-overwrite and checksum guarantees need a real S3 server: test/cluster/s3.test.ts.)
 */
import { mkdtempSync } from 'node:fs';
import { createRequire } from 'node:module';
import { createServer, type AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as delay } from 'node:timers/promises';
import { GetObjectCommand, PutObjectCommand, S3Client } from '@aws-sdk/client-s3';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { createBlobStore } from '../../blobs/index.ts';
import { S3BlobStore } from '../../blobs/s3-store.ts';
import { BlobCorruptError, BlobMissingError, BlobStoreUnavailableError, contentAddress } from '../../blobs/store.ts';
import { parseConfig } from '../../cli/config.ts';
import { eventually, startInProcessStack, testConfig } from '../harness.ts';

interface S3rver {
  run(): Promise<AddressInfo>;
  close(): Promise<void>;
}
// s3rver is CommonJS without types.
const S3rver = createRequire(import.meta.url)('@20minutes/s3rver') as new (options: Record<string, unknown>) => S3rver;

const realS3 = inject('s3');
const BUCKET = realS3?.bucket ?? 'durable-codemode';
/** s3rver's fixed credentials. */
const S3RVER_CREDENTIALS = { AWS_ACCESS_KEY_ID: 'S3RVER', AWS_SECRET_ACCESS_KEY: 'S3RVER' };
// The store takes its credentials from the environment like any AWS SDK client.
Object.assign(
  process.env,
  realS3
    ? { AWS_ACCESS_KEY_ID: realS3.accessKeyId, AWS_SECRET_ACCESS_KEY: realS3.secretAccessKey }
    : S3RVER_CREDENTIALS,
);

async function startS3rver(port = 0): Promise<{ server: S3rver; endpoint: string; port: number }> {
  const server = new S3rver({
    address: '127.0.0.1',
    port,
    silent: true,
    directory: mkdtempSync(join(tmpdir(), 'dcm-s3-')),
    configureBuckets: [{ name: BUCKET }],
  });
  const address = await server.run();
  return { server, endpoint: `http://127.0.0.1:${address.port}`, port: address.port };
}

/** A loopback port nothing listens on (taken, then released). */
async function freePort(): Promise<number> {
  const probe = createServer();
  await new Promise<void>((resolve) => probe.listen(0, '127.0.0.1', resolve));
  const { port } = probe.address() as AddressInfo;
  await new Promise((resolve) => probe.close(resolve));
  return port;
}

function rawClient(endpoint: string): S3Client {
  return new S3Client({ endpoint, region: 'us-east-1', forcePathStyle: true });
}

/** The object at `key`, read past the store (s3rver's listing rejects the SDK's signatures, so no listing). */
async function objectAt(client: S3Client, key: string): Promise<Buffer> {
  const object = await client.send(new GetObjectCommand({ Bucket: BUCKET, Key: key }));
  return Buffer.from(await object.Body!.transformToByteArray());
}

// One S3-protocol server on loopback for the whole file.
let s3: { endpoint: string; server?: S3rver };
let raw: S3Client;

beforeAll(async () => {
  s3 = realS3 ?? (await startS3rver());
  raw = rawClient(s3.endpoint);
});
afterAll(async () => {
  raw?.destroy();
  await s3?.server?.close();
});

describe('S3BlobStore', () => {
  it('stores content-addressed objects under the prefix and reads them back verified', async () => {
    const store = new S3BlobStore({ bucket: BUCKET, prefix: 'round-trip/', endpoint: s3.endpoint });
    const bytes = Buffer.from(
      JSON.stringify({ rows: Array.from({ length: 5000 }, (_, i) => ({ i, name: `lead ${i}` })) }),
    );
    const ref = await store.put(bytes);
    expect(ref).toEqual({ blob: contentAddress(bytes), bytes: bytes.length });
    expect((await objectAt(raw, `round-trip/${ref.blob}`)).equals(bytes)).toBe(true);
    expect((await store.get(ref)).equals(bytes)).toBe(true);
    // Another store on the same bucket (another worker) reads it too.
    const other = new S3BlobStore({ bucket: BUCKET, prefix: 'round-trip/', endpoint: s3.endpoint });
    expect((await other.get(ref)).equals(bytes)).toBe(true);
  });

  it('puts the same bytes twice as one object', async () => {
    const store = new S3BlobStore({ bucket: BUCKET, prefix: 'twice/', endpoint: s3.endpoint });
    const bytes = Buffer.from('the same value, written by a retried activity');
    const first = await store.put(bytes);
    const second = await store.put(bytes);
    expect(second).toEqual(first);
    expect((await objectAt(raw, `twice/${first.blob}`)).equals(bytes)).toBe(true);
  });

  it('reports a missing object as BlobMissingError naming the reference and the bucket', async () => {
    const store = new S3BlobStore({ bucket: BUCKET, prefix: 'missing/', endpoint: s3.endpoint });
    const ref = { blob: contentAddress(Buffer.from('never stored')), bytes: 12 };
    const error = await store.get(ref).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(BlobMissingError);
    expect((error as Error).message).toContain(ref.blob);
    expect((error as Error).message).toContain(`s3://${BUCKET}/missing/ at ${s3.endpoint}`);
  });

  it('reports an object whose bytes do not match its address as BlobCorruptError', async () => {
    const store = new S3BlobStore({ bucket: BUCKET, prefix: 'corrupt/', endpoint: s3.endpoint });
    const ref = await store.put(Buffer.from('{"value":"original"}'));
    await raw.send(
      new PutObjectCommand({ Bucket: BUCKET, Key: `corrupt/${ref.blob}`, Body: Buffer.from('{"value":"tampered"}') }),
    );
    const error = await store.get(ref).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(BlobCorruptError);
    expect((error as Error).message).toContain(ref.blob);
  });

  it('stores named records under <prefix>records/, reads them back, and answers undefined for none', async () => {
    const store = new S3BlobStore({ bucket: BUCKET, prefix: 'records-test/', endpoint: s3.endpoint });
    expect(await store.getRecord('outcomes/job-1/0')).toBeUndefined();
    expect(await store.putRecord('outcomes/job-1/0', Buffer.from('{"ok":true}'))).toBe(true);
    expect((await store.getRecord('outcomes/job-1/0'))?.toString()).toBe('{"ok":true}');
    expect((await objectAt(raw, 'records-test/records/outcomes/job-1/0')).toString()).toBe('{"ok":true}');
    // If-None-Match and listing (deleteRecords) need a real S3 server: s3rver ignores the one and
    // rejects the SDK's signature on the other. The cluster suite runs them against one.
  });

  it('fails with BlobStoreUnavailableError naming the endpoint when the server is down', async () => {
    const endpoint = `http://127.0.0.1:${await freePort()}`;
    const store = new S3BlobStore({ bucket: BUCKET, prefix: '', endpoint });
    for (const attempt of [
      () => store.put(Buffer.from('x')),
      () => store.get({ blob: contentAddress(Buffer.from('x')), bytes: 1 }),
    ]) {
      const error = await attempt().catch((e: unknown) => e);
      // An outage, not a lost blob: activities wait for the server rather than fail the job.
      expect(error).toBeInstanceOf(BlobStoreUnavailableError);
      expect((error as Error).message).toMatch(
        new RegExp(`blob store s3://${BUCKET}/ at ${endpoint}: the server is unreachable \\(ECONNREFUSED`),
      );
    }
  });

  it('names the server answer when the credentials are refused', async () => {
    const store = new S3BlobStore({ bucket: BUCKET, prefix: '', endpoint: s3.endpoint });
    const saved = process.env.AWS_SECRET_ACCESS_KEY;
    process.env.AWS_SECRET_ACCESS_KEY = 'wrong';
    try {
      const error = await store.put(Buffer.from('x')).catch((e: unknown) => e);
      expect((error as Error).message).toMatch(/the server answered 403 SignatureDoesNotMatch/);
    } finally {
      process.env.AWS_SECRET_ACCESS_KEY = saved;
    }
  });
});

describe('blobs.store in the config', () => {
  it('is the local directory by default, S3 when configured or when DURABLE_CODEMODE_S3_BUCKET is set', () => {
    expect(parseConfig({}, undefined, {}).blobs.store).toEqual({ type: 'local' });
    const fromFile = parseConfig(
      { blobs: { store: { type: 's3', bucket: 'b', endpoint: 'http://minio:9000' } } },
      undefined,
      {},
    );
    expect(fromFile.blobs.store).toEqual({ type: 's3', bucket: 'b', prefix: '', endpoint: 'http://minio:9000' });
    const fromEnv = parseConfig(fromFile, undefined, {
      DURABLE_CODEMODE_S3_BUCKET: 'other',
      DURABLE_CODEMODE_S3_PREFIX: 'jobs/',
    });
    expect(fromEnv.blobs.store).toEqual({
      type: 's3',
      bucket: 'other',
      prefix: 'jobs/',
      endpoint: 'http://minio:9000',
    });
    expect(parseConfig({}, undefined, { DURABLE_CODEMODE_S3_BUCKET: 'b' }).blobs.store).toEqual({
      type: 's3',
      bucket: 'b',
      prefix: '',
    });
    expect(createBlobStore(fromFile.blobs, fromFile.dataDir).location).toBe('s3://b/ at http://minio:9000');
    expect(() => parseConfig({ blobs: { store: { type: 's3' } } }, undefined, {})).toThrow(
      'blobs.store: "bucket" is required for type "s3"',
    );
  });
});

describe('jobs on a worker whose blob store is S3', () => {
  it('keeps a large step value in the bucket and replays it from there in a fresh sandbox', async () => {
    const config = testConfig({
      providers: {},
      blobs: { store: { type: 's3', bucket: BUCKET, prefix: 'job/', endpoint: s3.endpoint } },
    });
    const stack = await startInProcessStack(config);
    try {
      const started = await stack.jobs.execute({
        code: `async () => { const big = await step('big', () => 'x'.repeat(100000)); console.log('saved'); await sleep(1500); return big.length; }`,
        waitSeconds: 0,
      });
      await eventually(
        async () => ((await stack.jobs.status(started.job_id)).logs.includes('saved') ? true : undefined),
        30_000,
        'the step',
      );
      const value = Buffer.from(JSON.stringify('x'.repeat(100000)));
      expect((await objectAt(raw, `job/${contentAddress(value)}`)).equals(value)).toBe(true);
      await stack.worker.sessions.close(); // the next round replays the journal, reading the step back from S3
      const done = await stack.jobs.status(started.job_id, 60);
      expect(done).toMatchObject({ status: 'completed', result: 100000 });
      const history = JSON.stringify(await stack.client.workflow.getHandle(started.job_id).fetchHistory());
      expect(history.length).toBeLessThan(100_000); // the value itself never entered history
    } finally {
      await stack.close();
    }
  });

  it('waits out an S3 server that is down, then finishes the job', async () => {
    const port = await freePort();
    const config = testConfig({
      providers: {},
      blobs: { store: { type: 's3', bucket: BUCKET, prefix: 'late/', endpoint: `http://127.0.0.1:${port}` } },
    });
    // The server that comes up late is always s3rver, with its own credentials.
    const saved = {
      AWS_ACCESS_KEY_ID: process.env.AWS_ACCESS_KEY_ID,
      AWS_SECRET_ACCESS_KEY: process.env.AWS_SECRET_ACCESS_KEY,
    };
    Object.assign(process.env, S3RVER_CREDENTIALS);
    const stack = await startInProcessStack(config);
    let late: Awaited<ReturnType<typeof startS3rver>> | undefined;
    try {
      const started = await stack.jobs.execute({
        code: `async () => (await step('big', () => 'y'.repeat(50000))).length`,
        waitSeconds: 0,
      });
      // The round that saves the step waits while nothing listens, heartbeating, in its first attempt.
      await eventually(
        async () => {
          const { raw } = await stack.client.workflow.getHandle(started.job_id).describe();
          return raw.pendingActivities?.some((a) => a.attempt === 1 && a.lastHeartbeatTime) ? true : undefined;
        },
        30_000,
        'a round waiting for the S3 server',
      );
      await delay(3_000);
      late = await startS3rver(port);
      const done = await stack.jobs.status(started.job_id, 60);
      expect(done).toMatchObject({ status: 'completed', result: 50000 });
    } finally {
      await stack.close();
      await late?.server.close();
      Object.assign(process.env, saved);
    }
  });
});
