/**
 * A job's public values: personal-looking data (a SKU shaped like a phone number, a directory's
 * email) that only providers listed in `privacy.providers.public` returned to the job. The answers
 * about that job show them as they are, unless the principal already holds a token for them
 * (vault.ts, tokensFor's `asIs`).
 *
 * The worker learns them from the responses its live session receives (replayed or live, so a job
 * that moves to another worker learns them again from its journal), and keeps them where every MCP
 * server finds them: one record per job in the blob store, `privacy/public/<sha256 of the job id>`,
 * sealed with the codec key like the vault. They are never written to Temporal.
 */
import { createHash } from 'node:crypto';
import type { BlobStore } from '../blobs/store.ts';
import type { EffectOutcome, EffectRequest } from '../core/journal.ts';
import type { RecordSeal } from './seal.ts';

/** Where personal data came from in one job, as its session receives the responses. */
export class JobProvenance {
  private readonly isPublic: (provider: string) => boolean;
  private readonly valuesIn: (value: unknown) => string[];
  private readonly fromPublic = new Set<string>();
  /** Values any other provider returned, in an answer or an error: never public. */
  private readonly fromOthers = new Set<string>();
  private lastSaved = '[]';

  constructor(isPublic: (provider: string) => boolean, valuesIn: (value: unknown) => string[]) {
    this.isPublic = isPublic;
    this.valuesIn = valuesIn;
  }

  /** Notes the personal data in the outcomes of a round's calls (`outcomes[i]` answers `requests[i]`). */
  observe(requests: readonly EffectRequest[], outcomes: readonly EffectOutcome[]): void {
    requests.forEach((request, i) => {
      const outcome = outcomes[i];
      if (!outcome || (request.kind !== 'http' && request.kind !== 'tool')) return;
      if (this.isPublic(request.provider)) {
        if (outcome.ok) for (const value of this.valuesIn(outcome.value)) this.fromPublic.add(value);
      } else {
        for (const value of this.valuesIn(outcome.ok ? outcome.value : outcome.error)) this.fromOthers.add(value);
      }
    });
  }

  /** The job's public values so far. */
  get values(): Set<string> {
    return new Set([...this.fromPublic].filter((value) => !this.fromOthers.has(value)));
  }

  /** The public values when they changed since the last call (to be saved), else undefined. */
  changed(): string[] | undefined {
    const values = [...this.values].sort();
    const text = JSON.stringify(values);
    if (text === this.lastSaved) return undefined;
    this.lastSaved = text;
    return values;
  }
}

/** The jobs' public values in the blob store's records, sealed like the vault. */
export class PublicValuesStore {
  private readonly store: BlobStore;
  private readonly seal: RecordSeal;

  constructor(store: BlobStore, seal: RecordSeal) {
    this.store = store;
    this.seal = seal;
  }

  async save(jobId: string, values: string[]): Promise<void> {
    const name = recordOf(jobId);
    await this.store.putRecord(name, this.seal.seal(name, values));
  }

  async load(jobId: string): Promise<Set<string>> {
    const name = recordOf(jobId);
    const bytes = await this.store.getRecord(name);
    return new Set(bytes ? (this.seal.open(name, bytes) as string[]) : []);
  }
}

function recordOf(jobId: string): string {
  return `privacy/public/${createHash('sha256').update(jobId).digest('hex').slice(0, 40)}`;
}
