/**
 * The vault on a real (local) blob store: tokens stable across processes, scoped per principal,
 * unique under concurrent writers, encrypted with the codec key, expiring by generation, purged.
 * Several Vault instances on one store stand for several worker and MCP server processes.
 */
import { randomBytes } from 'node:crypto';
import { mkdtempSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { beforeEach, describe, expect, it } from 'vitest';
import { LocalBlobStore } from '../../blobs/local-store.ts';
import type { BlobStore } from '../../blobs/store.ts';
import { Vault, folderOf } from '../../privacy/vault.ts';

const DAY = 24 * 60 * 60 * 1000;
let dir: string;
let store: LocalBlobStore;
let clock: number;

beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'dcm-vault-'));
  store = new LocalBlobStore(dir);
  clock = 100 * 30 * DAY + 5 * DAY; // generation 100 of 30-day generations, 5 days in
});

function vault(codecKey?: Buffer): Vault {
  return new Vault({ store, codecKey, retentionMs: 30 * DAY, now: () => clock });
}

const emails = (n: number, from = 0) =>
  Array.from({ length: n }, (_, i) => ({ kind: 'EMAIL', value: `person${from + i}@example.com` }));

/** The test's store, counting record reads; `holdNextHead()` keeps the next head read's bytes (already read) until released. */
function watchedStore() {
  let reads = 0;
  let hold: { started: () => void; release: Promise<void> } | undefined;
  const watched: BlobStore = {
    location: store.location,
    put: (bytes) => store.put(bytes),
    get: (ref) => store.get(ref),
    putRecord: (name, bytes, options) => store.putRecord(name, bytes, options),
    deleteRecords: (folder) => store.deleteRecords(folder),
    async getRecord(name) {
      reads++;
      const bytes = await store.getRecord(name);
      const held = name.endsWith('/head') ? hold : undefined;
      if (held) {
        hold = undefined;
        held.started();
        await held.release;
      }
      return bytes;
    },
  };
  return {
    store: watched,
    reads: () => reads,
    holdNextHead() {
      let started!: () => void;
      let release!: () => void;
      const reading = new Promise<void>((resolve) => (started = resolve));
      hold = { started, release: new Promise<void>((resolve) => (release = resolve)) };
      return { reading, release };
    },
  };
}

/** Every file under the store's records, with its bytes. */
function recordFiles(): Array<{ name: string; bytes: Buffer }> {
  const root = join(dir, 'records');
  return readdirSync(root, { recursive: true })
    .map(String)
    .filter((name) => statSync(join(root, name)).isFile())
    .map((name) => ({ name, bytes: readFileSync(join(root, name)) }));
}

describe('privacy vault', () => {
  it('gives a value one token, stable across calls and processes, numbered per kind', async () => {
    const a = vault().of('alice');
    const first = await a.tokensFor([...emails(2), { kind: 'PHONE', value: '+1 212 555 0142' }, ...emails(1)]);
    expect(first).toEqual(['[EMAIL_1]', '[EMAIL_2]', '[PHONE_1]', '[EMAIL_1]']);
    expect(await a.tokensFor(emails(3))).toEqual(['[EMAIL_1]', '[EMAIL_2]', '[EMAIL_3]']);
    const elsewhere = vault().of('alice');
    expect(await elsewhere.tokensFor(emails(1, 2))).toEqual(['[EMAIL_3]']);
    expect(Object.fromEntries(await elsewhere.valuesOf(['[EMAIL_2]', '[PHONE_1]', '[EMAIL_9]']))).toEqual({
      '[EMAIL_2]': 'person1@example.com',
      '[PHONE_1]': '+1 212 555 0142',
    });
  });

  it("keeps principals apart: bob's vault does not hold alice's tokens", async () => {
    const v = vault();
    expect(await v.of('alice').tokensFor(emails(3))).toEqual(['[EMAIL_1]', '[EMAIL_2]', '[EMAIL_3]']);
    expect((await v.of('bob').valuesOf(['[EMAIL_1]', '[EMAIL_3]'])).size).toBe(0);
    expect(await v.of('bob').tokensFor(emails(1, 2))).toEqual(['[EMAIL_1]']);
    expect(Object.fromEntries(await vault().of('bob').valuesOf(['[EMAIL_1]']))).toEqual({
      '[EMAIL_1]': 'person2@example.com',
    });
  });

  it('numbers tokens uniquely when processes add overlapping values at once', async () => {
    const processes = Array.from({ length: 6 }, () => vault().of('alice'));
    // Each process adds 40 values in 4 calls, overlapping its neighbours' values by half.
    const results = await Promise.all(
      processes.map(async (p, k) => {
        const out: Array<[string, string]> = [];
        for (let call = 0; call < 4; call++) {
          const sightings = emails(10, k * 20 + call * 10);
          const tokens = await p.tokensFor(sightings);
          sightings.forEach((s, i) => out.push([s.value, tokens[i]]));
        }
        return out;
      }),
    );
    const tokenOf = new Map<string, string>();
    for (const [value, token] of results.flat()) {
      expect(tokenOf.get(value) ?? token, `${value} got two tokens`).toBe(token);
      tokenOf.set(value, token);
    }
    const tokens = [...tokenOf.values()];
    expect(new Set(tokens).size).toBe(tokens.length);
    expect(tokens.map((t) => Number(/\d+/.exec(t)![0])).sort((x, y) => x - y)).toEqual(
      Array.from({ length: tokens.length }, (_, i) => i + 1),
    );
    const fresh = await vault().of('alice').valuesOf(tokens);
    for (const [value, token] of tokenOf) expect(fresh.get(token)).toBe(value);
  });

  it('encrypts its records with the codec key: no value in the store, unreadable without the key', async () => {
    const key = randomBytes(32);
    const sightings = [...emails(3), { kind: 'NAME', value: 'Ada Lovelace' }];
    await vault(key).of('alice').tokensFor(sightings);
    const files = recordFiles();
    expect(files.length).toBeGreaterThan(1);
    for (const { name, bytes } of files) {
      expect(name).not.toContain('alice');
      for (const s of sightings) expect(bytes.includes(Buffer.from(s.value)), `${name} holds ${s.value}`).toBe(false);
      expect(bytes.includes(Buffer.from('EMAIL_'))).toBe(false);
    }
    await expect(vault().of('alice').valuesOf(['[EMAIL_1]'])).rejects.toMatchObject({
      name: 'PrivacyVaultError',
      message: expect.stringMatching(/encrypted, but this process has no codec key/),
    });
    await expect(vault(randomBytes(32)).of('alice').valuesOf(['[EMAIL_1]'])).rejects.toThrow(/another codec key/);
    expect((await vault(key).of('alice').valuesOf(['[EMAIL_1]'])).get('[EMAIL_1]')).toBe('person0@example.com');
  });

  it('keeps records in plain JSON without a codec key (what README says)', async () => {
    await vault().of('alice').tokensFor(emails(1));
    expect(recordFiles().some(({ bytes }) => bytes.includes(Buffer.from('person0@example.com')))).toBe(true);
  });

  it('refuses a sealed record moved under another name (another principal, another position)', async () => {
    const key = randomBytes(32);
    await vault(key).of('alice').tokensFor(emails(1));
    await vault(key).of('bob').tokensFor(emails(1, 5));
    const chunk = (who: string) =>
      recordFiles().find((f) => f.name.startsWith(folderOf(who)) && f.name.endsWith('/c0'))!;
    await store.putRecord(chunk('bob').name, chunk('alice').bytes);
    await expect(vault(key).of('bob').valuesOf(['[EMAIL_1]'])).rejects.toThrow(/fails its integrity check/);
  });

  it('keeps a token for at least one generation after it was last seen, then deletes the value', async () => {
    const v = vault();
    expect(await v.of('alice').tokensFor(emails(2))).toEqual(['[EMAIL_1]', '[EMAIL_2]']);
    clock += 30 * DAY; // generation 101: the earlier generation is still readable
    expect((await vault().of('alice').valuesOf(['[EMAIL_1]', '[EMAIL_2]'])).size).toBe(2);
    // person0 is seen again: carried into generation 101 under the same token; person1 is not.
    expect(await v.of('alice').tokensFor(emails(1))).toEqual(['[EMAIL_1]']);
    clock += 30 * DAY; // generation 102: generation 100 expired
    const later = vault().of('alice');
    expect(Object.fromEntries(await later.valuesOf(['[EMAIL_1]', '[EMAIL_2]']))).toEqual({
      '[EMAIL_1]': 'person0@example.com',
    });
    // person1 comes back as a new number: numbers are never reused for another value.
    expect(await later.tokensFor(emails(2))).toEqual(['[EMAIL_1]', '[EMAIL_3]']);
    // That write opened generation 102 and deleted generation 100: person1's first record is gone.
    expect(recordFiles().filter((f) => f.name.includes('/g100/'))).toEqual([]);
    expect(recordFiles().filter((f) => f.name.includes('/g101/')).length).toBeGreaterThan(0);
    const all = Buffer.concat(recordFiles().map((f) => f.bytes)).toString();
    expect(all.match(/person1@example\.com/g)).toHaveLength(1); // only its new entry in generation 102
  });

  it('forgets a vault nobody used for two generations, numbering on after it', async () => {
    await vault().of('alice').tokensFor(emails(2));
    clock += 3 * 30 * DAY;
    const v = vault().of('alice');
    expect((await v.valuesOf(['[EMAIL_1]'])).size).toBe(0);
    expect(await v.tokensFor(emails(1))).toEqual(['[EMAIL_3]']);
    expect(recordFiles().filter((f) => /\/g100\//.test(f.name))).toEqual([]);
  });

  it('purges a principal: its tokens stop restoring on every process, other principals keep theirs', async () => {
    const mcp = vault();
    const worker = vault();
    await mcp.of('alice').tokensFor(emails(3));
    await mcp.of('bob').tokensFor(emails(1));
    expect((await worker.of('alice').valuesOf(['[EMAIL_1]'])).size).toBe(1); // cached in the worker now
    expect(await vault().purge('alice')).toBeGreaterThan(1);
    expect((await worker.of('alice').valuesOf(['[EMAIL_1]'])).size).toBe(0);
    expect((await mcp.of('alice').valuesOf(['[EMAIL_1]'])).size).toBe(0);
    expect((await worker.of('bob').valuesOf(['[EMAIL_1]'])).size).toBe(1);
    expect(recordFiles().some(({ bytes }) => bytes.includes(Buffer.from('person2@example.com')))).toBe(false);
    expect(await mcp.of('alice').tokensFor(emails(1, 7))).toEqual(['[EMAIL_1]']);
  });

  it("answers a round's parallel restores with one read of the store, each its own tokens", async () => {
    const tokens = await vault().of('alice').tokensFor(emails(10));
    const watched = watchedStore();
    const worker = new Vault({ store: watched.store, retentionMs: 30 * DAY, now: () => clock }).of('alice');
    await worker.valuesOf([tokens[0]]);
    const before = watched.reads();
    await worker.valuesOf([tokens[0]]);
    const oneRead = watched.reads() - before;
    expect(oneRead).toBeGreaterThan(0);

    const start = watched.reads();
    const answers = await Promise.all([
      ...tokens.map((token) => worker.valuesOf([token])),
      worker.valuesOf(['[EMAIL_99]']),
    ]);
    expect(watched.reads() - start).toBe(oneRead);
    expect(answers.map((found) => Object.fromEntries(found))).toEqual([
      ...tokens.map((token, i) => ({ [token]: `person${i}@example.com` })),
      {},
    ]);
  });

  it('answers a restore asked during a read with the next read: a purge finished before it is seen', async () => {
    const watched = watchedStore();
    await vault().of('alice').tokensFor(emails(1));
    const worker = new Vault({ store: watched.store, retentionMs: 30 * DAY, now: () => clock }).of('alice');
    expect((await worker.valuesOf(['[EMAIL_1]'])).size).toBe(1);
    const held = watched.holdNextHead();
    const early = worker.valuesOf(['[EMAIL_1]']);
    await held.reading; // that read has the head from before the purge
    expect(await vault().purge('alice')).toBeGreaterThan(0);
    const late = worker.valuesOf(['[EMAIL_1]']);
    held.release();
    expect((await early).size).toBe(1); // asked before the purge
    expect((await late).size).toBe(0);
  });
});
