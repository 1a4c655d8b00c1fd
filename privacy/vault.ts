/**
 * The vault: which token stands for which value, per principal (alice's `[EMAIL_1]` is not bob's),
 * kept in the blob store's named records so every worker and MCP server shares it, sealed with
 * the codec key when one is set (seal.ts). Nothing of it goes to Temporal or to logs.
 *
 * A principal's vault is an append-only log of chunks. A chunk's name is claimed with
 * `putRecord(..., { ifAbsent: true })`, so of two processes adding tokens at once exactly one
 * wins each position; the other reads the winner's chunk and numbers its own tokens after it.
 * That is what keeps token numbers unique without a lock service.
 *
 * Retention: the log is cut into generations of `retentionMs` (generation = floor(time /
 * retentionMs)). Lookups see the current and the previous generation; a value seen again is
 * carried into the current one under the same token. The first write of a new generation seals
 * the old one (claims its next position, so nothing more lands there) and deletes the generation
 * before it. So a token stays valid at least `retentionMs` after it was last shown, at most twice
 * that, and a value nobody saw for two generations is deleted with the next write to the vault.
 *
 * Layout under `vault/<sha256 of the principal's name>/`:
 *   head                 { id, latest, previous }   the live vault (a new id after a purge) and its newest generation
 *   <id>/g<G>/c<k>       chunk k of generation G:  { at, entries: [token, value][] } (c0 also
 *                        { previous, base }: the generation before and the highest numbers so far),
 *                        or { seal: true } as the last chunk of a closed generation
 */
import { createHash, randomUUID } from 'node:crypto';
import { setImmediate as yieldToOthers } from 'node:timers/promises';
import type { BlobStore } from '../blobs/store.ts';
import { RecordSeal, VaultError } from './seal.ts';
import { formatToken, parseToken } from './tokens.ts';

export interface VaultOptions {
  store: BlobStore;
  /** The payload codec key's 32 bytes (DURABLE_CODEMODE_CODEC_KEY), or undefined: records in plain JSON. */
  codecKey?: Buffer;
  retentionMs: number;
  now?: () => number;
}

/** A value to tokenize and its kind (EMAIL, NAME, ...). */
export interface Sighting {
  kind: string;
  value: string;
}

interface Head {
  id: string;
  latest: number;
  previous: number | null;
}

interface Chunk {
  at: number;
  entries?: Array<[token: string, value: string]>;
  /** c0 only: the generation this one follows, and the highest number of each kind before it. */
  previous?: number | null;
  base?: Record<string, number>;
  /** The generation is closed: its next position is taken by this marker. */
  seal?: true;
}

interface Generation {
  n: number;
  /** The next chunk position to read or claim. */
  next: number;
  sealed: boolean;
  previous: number | null;
}

interface Entry {
  token: string;
  value: string;
  generation: number;
}

/** Gives up adding tokens after this many lost races in a row (it would take a storm of writers). */
const MAX_CLAIM_ATTEMPTS = 100;

export class Vault {
  private readonly options: Required<Omit<VaultOptions, 'codecKey'>>;
  private readonly seal: RecordSeal;
  private readonly principals = new Map<string, PrincipalVault>();

  constructor(options: VaultOptions) {
    this.options = { now: Date.now, ...options };
    this.seal = new RecordSeal(options.codecKey);
  }

  /** Whether records are encrypted (a codec key is set). */
  get encrypts(): boolean {
    return this.seal.encrypts;
  }

  /** The vault of one principal (kept in memory between calls; refreshed from the store on each, see PrincipalVault.valuesOf). */
  of(principal: string): PrincipalVault {
    let vault = this.principals.get(principal);
    if (!vault) {
      vault = new PrincipalVault(folderOf(principal), this.options, this.seal);
      this.principals.set(principal, vault);
    }
    return vault;
  }

  /** Deletes everything the principal's vault holds; its tokens stop restoring at once, on every process. Returns the records deleted. */
  async purge(principal: string): Promise<number> {
    const deleted = await this.options.store.deleteRecords(folderOf(principal));
    this.principals.delete(principal);
    return deleted;
  }
}

/** Where a principal's vault lives; the name is hashed so record names stay plain whatever it is. */
export function folderOf(principal: string): string {
  return `vault/${createHash('sha256').update(principal).digest('hex').slice(0, 32)}/`;
}

export class PrincipalVault {
  private readonly folder: string;
  private readonly store: BlobStore;
  private readonly seal: RecordSeal;
  private readonly retentionMs: number;
  private readonly now: () => number;
  /** One operation at a time per principal and process: they would only race each other for chunk positions. */
  private queue: Promise<unknown> = Promise.resolve();
  /** The read of the vault that has not begun yet, and the tokens asked of it so far (see valuesOf). */
  private nextRead: { tokens: Set<string>; values: Promise<Map<string, string>> } | undefined;

  private id: string | undefined;
  private latest: Generation | undefined;
  /** The generation before `latest`, loaded while it is still readable. */
  private before: Generation | undefined;
  private readonly byToken = new Map<string, Entry>();
  private readonly byValue = new Map<string, Entry>();
  /** The highest number of each kind in the vault so far (latest's base plus its chunks). */
  private readonly highest = new Map<string, number>();

  constructor(folder: string, options: { store: BlobStore; retentionMs: number; now: () => number }, seal: RecordSeal) {
    this.folder = folder;
    this.store = options.store;
    this.retentionMs = options.retentionMs;
    this.now = options.now;
    this.seal = seal;
  }

  /**
   * The token of each sighting, in order: the one it already has, or a new one. A sighting whose
   * value is in `asIs` (a job's public values) keeps a token it already has, and otherwise comes
   * back as its value, with nothing added to the vault.
   */
  tokensFor(sightings: Sighting[], asIs?: ReadonlySet<string>): Promise<string[]> {
    return this.exclusive(async () => {
      await this.sync();
      const tokenized = asIs?.size
        ? sightings.filter((s) => !asIs.has(s.value) || this.byValue.has(keyOf(s)))
        : sightings;
      for (let attempt = 0; attempt < MAX_CLAIM_ATTEMPTS; attempt++) {
        const added = await this.tryAdd(tokenized);
        if (added) return sightings.map((s) => this.byValue.get(keyOf(s))?.token ?? s.value);
      }
      throw new VaultError(
        `could not add tokens to the vault after ${MAX_CLAIM_ATTEMPTS} attempts (too many concurrent writers?)`,
      );
    });
  }

  /**
   * The values of the tokens this principal holds (still readable); tokens it does not hold are
   * absent from the map. Every answer comes from a read of the store that began after the question
   * was asked, so a purge that finished before it is always seen. Questions asked while no read has
   * begun share the next one: the parallel calls of a round cost one read of the vault, not one each.
   */
  async valuesOf(tokens: Iterable<string>): Promise<Map<string, string>> {
    const wanted = [...tokens];
    let read = this.nextRead;
    if (!read) {
      const batch = new Set<string>();
      read = this.nextRead = {
        tokens: batch,
        values: this.exclusive(async () => {
          await yieldToOthers(); // the other calls of the round ask in the meantime
          this.nextRead = undefined; // from here on, questions wait for the next read
          await this.sync();
          const readable = this.generationNow() - 1;
          const found = new Map<string, string>();
          for (const token of batch) {
            const entry = this.byToken.get(token);
            if (entry && entry.generation >= readable) found.set(token, entry.value);
          }
          return found;
        }),
      };
    }
    for (const token of wanted) read.tokens.add(token);
    const found = await read.values;
    return new Map(wanted.flatMap((token) => (found.has(token) ? [[token, found.get(token)!] as const] : [])));
  }

  private exclusive<T>(work: () => Promise<T>): Promise<T> {
    const run = this.queue.then(work, work);
    this.queue = run.catch(() => undefined);
    return run;
  }

  private generationNow(): number {
    return Math.floor(this.now() / this.retentionMs);
  }

  /**
   * Adds what the sightings need (new tokens, and old ones carried into the current generation)
   * as one chunk. False when another process claimed the position first: the state is then
   * updated from its chunk, and the caller tries again.
   */
  private async tryAdd(sightings: Sighting[]): Promise<boolean> {
    const target = Math.max(this.generationNow(), this.latest?.n ?? -Infinity);
    const entries = this.entriesNeeded(sightings, target);
    if (entries.length === 0) return true;
    const at = this.now();
    if (!this.id) {
      const head: Head = { id: randomUUID(), latest: target, previous: null };
      if (!(await this.putRecord(this.headName(), head, true))) {
        await this.sync();
        return false;
      }
      this.reset(head.id);
    }
    const latest = this.latest;
    if (latest && latest.n === target && !latest.sealed) {
      if (!(await this.putRecord(this.chunkName(target, latest.next), { at, entries } satisfies Chunk, true))) {
        await this.loadChunks(latest);
        return false;
      }
      latest.next++;
      this.apply(entries, target);
      return true;
    }
    // A new generation: point the head at it, close the old one, then claim its first chunk.
    await this.putRecord(this.headName(), { id: this.id!, latest: target, previous: latest?.n ?? null } satisfies Head);
    if (latest && !latest.sealed) {
      if (!(await this.putRecord(this.chunkName(latest.n, latest.next), { at, seal: true } satisfies Chunk, true))) {
        await this.loadChunks(latest);
        return false;
      }
      latest.next++;
      latest.sealed = true;
    }
    const first: Chunk = { at, previous: latest?.n ?? null, base: Object.fromEntries(this.highest), entries };
    if (!(await this.putRecord(this.chunkName(target, 0), first, true))) {
      await this.sync();
      return false;
    }
    await this.deleteExpired(latest, target);
    this.before = latest && latest.n === target - 1 ? latest : undefined;
    this.latest = { n: target, next: 1, sealed: false, previous: latest?.n ?? null };
    this.apply(entries, target);
    this.forgetExpired();
    return true;
  }

  /** Entries for sightings that have no token readable in `target`: new numbers, or their old token carried along. */
  private entriesNeeded(sightings: Sighting[], target: number): Array<[string, string]> {
    const entries: Array<[string, string]> = [];
    const planned = new Set<string>();
    const next = new Map(this.highest);
    const readable = this.generationNow() - 1;
    for (const sighting of sightings) {
      const key = keyOf(sighting);
      if (planned.has(key)) continue;
      const known = this.byValue.get(key);
      if (known && known.generation === target) continue;
      planned.add(key);
      if (known && known.generation >= readable) {
        entries.push([known.token, sighting.value]);
        continue;
      }
      const n = (next.get(sighting.kind) ?? 0) + 1;
      next.set(sighting.kind, n);
      entries.push([formatToken(sighting.kind, n), sighting.value]);
    }
    return entries;
  }

  /** Deletes the generations that are no longer readable once `target` exists (at most two: the vault keeps two). */
  private async deleteExpired(latest: Generation | undefined, target: number): Promise<void> {
    if (!latest) return;
    const expired = latest.n === target - 1 ? [latest.previous] : [latest.n, latest.previous];
    for (const n of expired) if (n !== null) await this.store.deleteRecords(`${this.folder}${this.id}/g${n}/`);
  }

  /** Catches up with the store: a purge (new or no head), new generations, new chunks. */
  private async sync(): Promise<void> {
    const head = (await this.getRecord(this.headName())) as Head | undefined;
    if (!head) {
      this.reset(undefined);
      return;
    }
    if (head.id !== this.id) this.reset(head.id);
    const now = this.generationNow();
    let newest = Math.max(head.latest, this.latest?.n ?? -Infinity);
    // The head may lag behind a generation whose creator has not pointed it there yet.
    if (now > newest && (await this.getRecord(this.chunkName(now, 0))) !== undefined) newest = now;
    // Whatever else, finish reading the generation we know: chunks may have landed in it before it was sealed.
    if (this.latest) await this.loadChunks(this.latest);
    if (this.latest?.n !== newest) {
      const loaded = (await this.loadGeneration(newest)) ?? (await this.loadGeneration(head.previous));
      if (loaded && this.latest && loaded.n !== this.latest.n) this.before = this.latest;
      this.latest = loaded;
    }
    const previous = this.latest?.previous ?? null;
    if (previous !== null && previous >= now - 1 && this.before?.n !== previous) {
      this.before = (await this.loadGeneration(previous)) ?? undefined;
    }
    this.forgetExpired();
  }

  /** Drops entries of generations no longer readable from memory (the store deletes them on the next new generation). */
  private forgetExpired(): void {
    const readable = this.generationNow() - 1;
    for (const map of [this.byToken, this.byValue])
      for (const [key, entry] of map) if (entry.generation < readable) map.delete(key);
  }

  /** Reads a generation from its first chunk; undefined when it has none (its creation did not finish). */
  private async loadGeneration(n: number | null): Promise<Generation | undefined> {
    if (n === null || !Number.isFinite(n)) return undefined;
    const generation: Generation = { n, next: 0, sealed: false, previous: null };
    await this.loadChunks(generation);
    return generation.next > 0 ? generation : undefined;
  }

  /** Reads the generation's chunks from `next` on, until one is missing. */
  private async loadChunks(generation: Generation): Promise<void> {
    while (!generation.sealed) {
      const chunk = (await this.getRecord(this.chunkName(generation.n, generation.next))) as Chunk | undefined;
      if (!chunk) return;
      if (generation.next === 0) {
        generation.previous = chunk.previous ?? null;
        for (const [kind, n] of Object.entries(chunk.base ?? {})) this.raise(kind, n);
      }
      generation.next++;
      if (chunk.seal) generation.sealed = true;
      if (chunk.entries) this.apply(chunk.entries, generation.n);
    }
  }

  private apply(entries: Array<[string, string]>, generation: number): void {
    for (const [token, value] of entries) {
      const parsed = parseToken(token);
      if (!parsed) throw new VaultError(`the vault holds a malformed token ${JSON.stringify(token)}; purge the vault`);
      this.raise(parsed.kind, parsed.n);
      const entry = { token, value, generation };
      const known = this.byToken.get(token);
      if (!known || known.generation <= generation) this.byToken.set(token, entry);
      const key = keyOf({ kind: parsed.kind, value });
      const byValue = this.byValue.get(key);
      if (!byValue || byValue.generation <= generation) this.byValue.set(key, entry);
    }
  }

  private raise(kind: string, n: number): void {
    if (n > (this.highest.get(kind) ?? 0)) this.highest.set(kind, n);
  }

  private reset(id: string | undefined): void {
    this.id = id;
    this.latest = undefined;
    this.before = undefined;
    this.byToken.clear();
    this.byValue.clear();
    this.highest.clear();
  }

  private headName(): string {
    return `${this.folder}head`;
  }

  private chunkName(generation: number, k: number): string {
    return `${this.folder}${this.id}/g${generation}/c${k}`;
  }

  /** A record, opened; the store's own failures (BlobStoreUnavailableError) pass through as they are. */
  private async getRecord(name: string): Promise<unknown> {
    const bytes = await this.store.getRecord(name);
    return bytes === undefined ? undefined : this.seal.open(name, bytes);
  }

  private putRecord(name: string, value: unknown, ifAbsent = false): Promise<boolean> {
    return this.store.putRecord(name, this.seal.seal(name, value), { ifAbsent });
  }
}

function keyOf({ kind, value }: Sighting): string {
  return `${kind}\u0000${value}`;
}
