/**
 * Optional encryption of what the product writes to Temporal: with DURABLE_CODEMODE_CODEC_KEY set
 * (32 random bytes, base64), every payload (job input and script, results, journal rounds, memos,
 * summaries) is sealed with AES-256-GCM before it leaves the process, so Temporal's history and
 * database hold ciphertext. Clients, workers and the codec endpoint must share the key.
 *
 * Failure messages and stack traces are sealed too (temporal/failure-converter.ts).
 *
 * The codec endpoint (`POST /codec/decode` and `/codec/encode`, Temporal's remote codec protocol)
 * lets the Temporal UI show decoded payloads to an operator who reaches it.
 */
import { createCipheriv, createDecipheriv, createHash, randomBytes } from 'node:crypto';
import { extname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { PACKAGE_ROOT } from '../core/package-root.ts';
import type { DataConverter, Payload, PayloadCodec } from '@temporalio/common';

export const CODEC_KEY_ENV = 'DURABLE_CODEMODE_CODEC_KEY';
const ENCODING = 'binary/encrypted';
const KEY_ID = 'encryption-key-id';
const IV_BYTES = 12;
const TAG_BYTES = 16;

export class CodecKeyError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'CodecKeyError';
  }
}

/** A payload as JSON: what is sealed, and what the codec endpoint speaks (bytes as base64). */
interface JsonPayload {
  metadata?: Record<string, string>;
  data?: string;
}

const b64 = (bytes: Uint8Array | null | undefined) => Buffer.from(bytes ?? []).toString('base64');

function toJson(payload: Payload): JsonPayload {
  return {
    metadata: Object.fromEntries(Object.entries(payload.metadata ?? {}).map(([k, v]) => [k, b64(v)])),
    data: b64(payload.data),
  };
}

function fromJson(payload: JsonPayload): Payload {
  return {
    metadata: Object.fromEntries(Object.entries(payload.metadata ?? {}).map(([k, v]) => [k, Buffer.from(v, 'base64')])),
    data: Buffer.from(payload.data ?? '', 'base64'),
  };
}

export class AesGcmCodec implements PayloadCodec {
  private readonly key: Buffer;
  /** Names the key without revealing it, so a payload sealed with another key says so. */
  readonly keyId: string;

  constructor(key: Buffer) {
    if (key.length !== 32)
      throw new CodecKeyError(
        `${CODEC_KEY_ENV} must be 32 bytes in base64 (got ${key.length} bytes). Make one with: openssl rand -base64 32`,
      );
    this.key = key;
    this.keyId = `sha256:${createHash('sha256').update(key).digest('hex').slice(0, 16)}`;
  }

  async encode(payloads: Payload[]): Promise<Payload[]> {
    return payloads.map((payload) => {
      const iv = randomBytes(IV_BYTES);
      const cipher = createCipheriv('aes-256-gcm', this.key, iv);
      const sealed = Buffer.concat([
        iv,
        cipher.update(JSON.stringify(toJson(payload))),
        cipher.final(),
        cipher.getAuthTag(),
      ]);
      return { metadata: { encoding: Buffer.from(ENCODING), [KEY_ID]: Buffer.from(this.keyId) }, data: sealed };
    });
  }

  async decode(payloads: Payload[]): Promise<Payload[]> {
    return payloads.map((payload) => {
      if (Buffer.from(payload.metadata?.encoding ?? []).toString() !== ENCODING) return payload;
      const keyId = Buffer.from(payload.metadata?.[KEY_ID] ?? []).toString();
      if (keyId !== this.keyId)
        throw new CodecKeyError(
          `a payload was encrypted with key ${keyId}, but ${CODEC_KEY_ENV} is key ${this.keyId}. Use the key the job was started with.`,
        );
      const data = Buffer.from(payload.data ?? []);
      const decipher = createDecipheriv('aes-256-gcm', this.key, data.subarray(0, IV_BYTES));
      decipher.setAuthTag(data.subarray(data.length - TAG_BYTES));
      const plain = Buffer.concat([
        decipher.update(data.subarray(IV_BYTES, data.length - TAG_BYTES)),
        decipher.final(),
      ]);
      return fromJson(JSON.parse(plain.toString('utf8')) as JsonPayload);
    });
  }

  /** One request of Temporal's remote codec protocol: `{ payloads: [...] }` in, the same shape out. */
  async handle(action: 'encode' | 'decode', body: string): Promise<{ payloads: JsonPayload[] }> {
    const request = JSON.parse(body) as { payloads?: JsonPayload[] };
    if (!Array.isArray(request.payloads)) throw new SyntaxError('the body must be {"payloads": [...]}');
    const payloads = request.payloads.map(fromJson);
    return { payloads: (await (action === 'encode' ? this.encode(payloads) : this.decode(payloads))).map(toJson) };
  }
}

/** The codec key's bytes from the environment, or undefined when none is set (the privacy vault is sealed with it too). */
export function codecKeyFromEnv(env: NodeJS.ProcessEnv = process.env): Buffer | undefined {
  const key = env[CODEC_KEY_ENV];
  if (!key) return undefined;
  if (!/^[A-Za-z0-9+/]+={0,2}$/.test(key.trim()))
    throw new CodecKeyError(`${CODEC_KEY_ENV} is not base64. Make a key with: openssl rand -base64 32`);
  return Buffer.from(key.trim(), 'base64');
}

/** The codec the environment asks for, or undefined when no key is set. */
export function codecFromEnv(env: NodeJS.ProcessEnv = process.env): AesGcmCodec | undefined {
  const key = codecKeyFromEnv(env);
  return key && new AesGcmCodec(key);
}

/** The failure converter that seals failure messages: its source, which the workflow bundle is built from. */
export const FAILURE_CONVERTER_PATH = join(PACKAGE_ROOT, 'temporal', 'failure-converter.ts');

/**
 * The same module as the SDK loads it by path in this process (for clients and activities): the
 * compiled one beside this file when this runs compiled (cli/compile.ts), so no TypeScript loads.
 */
const FAILURE_CONVERTER_MODULE = fileURLToPath(
  new URL(`./failure-converter${extname(fileURLToPath(import.meta.url))}`, import.meta.url),
);

/** The data converter every client and worker of the product uses: encrypting when a key is set. */
export function dataConverter(env: NodeJS.ProcessEnv = process.env): DataConverter {
  const codec = codecFromEnv(env);
  return codec ? { payloadCodecs: [codec], failureConverterPath: FAILURE_CONVERTER_MODULE } : {};
}
