/**
 * Claim check at the activity boundary: values above the threshold go to the blob store and only
 * their reference enters workflow history; on the way back into the sandbox they are resolved.
 */
import type { BlobRef, EffectOutcome, Json, PlannedEffect, Round, StepRecord } from '../core/journal.ts';
import type { BlobStore } from './store.ts';

export class ClaimCheck {
  private readonly store: BlobStore;
  private readonly thresholdBytes: number;

  constructor(store: BlobStore, thresholdBytes: number) {
    this.store = store;
    this.thresholdBytes = thresholdBytes;
  }

  /** The value itself when small, else a reference to it in the blob store. */
  async offload(value: Json | undefined): Promise<{ value?: Json; ref?: BlobRef }> {
    if (value === undefined) return {};
    const text = JSON.stringify(value);
    if (text.length <= this.thresholdBytes) return { value };
    return { ref: await this.store.put(Buffer.from(text)) };
  }

  async load(ref: BlobRef): Promise<Json> {
    return JSON.parse((await this.store.get(ref)).toString('utf8')) as Json;
  }

  async offloadOutcome(outcome: EffectOutcome): Promise<EffectOutcome> {
    return outcome.ok ? { ok: true, ...(await this.offload(outcome.value)) } : outcome;
  }

  async resolveOutcome(outcome: EffectOutcome): Promise<EffectOutcome> {
    return outcome.ok && outcome.ref ? { ok: true, value: await this.load(outcome.ref) } : outcome;
  }

  async offloadStep(step: StepRecord): Promise<StepRecord> {
    return { index: step.index, name: step.name, ...(await this.offload(step.value)) };
  }

  async resolveStep(step: StepRecord): Promise<StepRecord> {
    return step.ref ? { index: step.index, name: step.name, value: await this.load(step.ref) } : step;
  }

  /** Request bodies too large for history travel by reference to the activity that sends them. */
  async offloadRequest(effect: PlannedEffect): Promise<PlannedEffect> {
    const { request } = effect;
    if (request.kind !== 'http' || request.body === undefined) return effect;
    const { ref } = await this.offload(request.body);
    if (!ref) return effect;
    const { body: _inline, ...rest } = request;
    return { ...effect, request: { ...rest, bodyRef: ref } };
  }

  async resolveBody(body: Json | undefined, bodyRef: BlobRef | undefined): Promise<Json | undefined> {
    return bodyRef ? this.load(bodyRef) : body;
  }

  /** Saves rounds of a journal as one segment. */
  async saveRounds(rounds: Round[]): Promise<BlobRef> {
    return this.store.put(Buffer.from(JSON.stringify(rounds)));
  }

  /** Loads journal segments, in order, as stored (outcomes and steps may still be references). */
  async loadRounds(segments: BlobRef[]): Promise<Round[]> {
    const parts = await Promise.all(segments.map(async (ref) => (await this.load(ref)) as unknown as Round[]));
    return parts.flat();
  }

  /** A round with every reference resolved, as the sandbox replays it. */
  async resolveRound(round: Round): Promise<Round> {
    return {
      now: round.now,
      steps: await Promise.all(round.steps.map((s) => this.resolveStep(s))),
      effects: await Promise.all(
        round.effects.map(async (e) => ({ ...e, outcome: await this.resolveOutcome(e.outcome) })),
      ),
    };
  }
}
