/**
 * The vault's records at rest: sealed with AES-256-GCM under a key derived from the payload codec
 * key (DURABLE_CODEMODE_CODEC_KEY) when one is configured, else plain JSON. The record's name is
 * the additional authenticated data, so a record copied under another name (another principal's
 * vault, another position in the log) fails to open instead of being believed.
 */
import { createCipheriv, createDecipheriv, createHash, hkdfSync, randomBytes } from 'node:crypto';
import { ProductError } from '../core/errors.ts';

const CLEAR = 0x01;
const SEALED = 0x02;
const IV_BYTES = 12;
const TAG_BYTES = 16;
const KEY_ID_BYTES = 8;

/** The vault's failures: unreadable records (wrong key, no key, tampering) or an unreachable store. */
export class VaultError extends ProductError {
  constructor(message: string, options?: ErrorOptions) {
    super('PrivacyVaultError', message, options);
  }
}

export class RecordSeal {
  private readonly key: Buffer | undefined;
  private readonly keyId: Buffer | undefined;

  /** `codecKey`: the 32 bytes of the payload codec key, or undefined to keep records in plain JSON. */
  constructor(codecKey: Buffer | undefined) {
    if (codecKey) {
      this.key = Buffer.from(hkdfSync('sha256', codecKey, 'durable-codemode', 'privacy vault records v1', 32));
      this.keyId = createHash('sha256').update(this.key).digest().subarray(0, KEY_ID_BYTES);
    }
  }

  get encrypts(): boolean {
    return this.key !== undefined;
  }

  seal(name: string, value: unknown): Buffer {
    const plain = Buffer.from(JSON.stringify(value));
    if (!this.key || !this.keyId) return Buffer.concat([Buffer.of(CLEAR), plain]);
    const iv = randomBytes(IV_BYTES);
    const cipher = createCipheriv('aes-256-gcm', this.key, iv);
    cipher.setAAD(Buffer.from(name));
    const body = Buffer.concat([cipher.update(plain), cipher.final()]);
    return Buffer.concat([Buffer.of(SEALED), this.keyId, iv, body, cipher.getAuthTag()]);
  }

  open(name: string, bytes: Buffer): unknown {
    let plain: Buffer;
    if (bytes[0] === CLEAR) plain = bytes.subarray(1);
    else if (bytes[0] === SEALED) plain = this.decrypt(name, bytes);
    else throw new VaultError(`vault record ${name} is not a vault record (unknown format); purge the vault`);
    try {
      return JSON.parse(plain.toString('utf8'));
    } catch (e) {
      throw new VaultError(`vault record ${name} is not valid JSON; purge the vault`, { cause: e });
    }
  }

  private decrypt(name: string, bytes: Buffer): Buffer {
    if (!this.key || !this.keyId)
      throw new VaultError(
        `vault record ${name} is encrypted, but this process has no codec key: set DURABLE_CODEMODE_CODEC_KEY as on the other processes`,
      );
    const keyId = bytes.subarray(1, 1 + KEY_ID_BYTES);
    if (!keyId.equals(this.keyId))
      throw new VaultError(
        `vault record ${name} was encrypted with another codec key (${keyId.toString('hex')}, this process has ${this.keyId.toString('hex')}): use the key it was written with, or purge the vault`,
      );
    const iv = bytes.subarray(1 + KEY_ID_BYTES, 1 + KEY_ID_BYTES + IV_BYTES);
    const decipher = createDecipheriv('aes-256-gcm', this.key, iv);
    decipher.setAAD(Buffer.from(name));
    decipher.setAuthTag(bytes.subarray(bytes.length - TAG_BYTES));
    try {
      return Buffer.concat([
        decipher.update(bytes.subarray(1 + KEY_ID_BYTES + IV_BYTES, bytes.length - TAG_BYTES)),
        decipher.final(),
      ]);
    } catch (e) {
      throw new VaultError(`vault record ${name} fails its integrity check (altered, or moved from another name)`, {
        cause: e,
      });
    }
  }
}
