/**
 * Claim check at the activity boundary: values above the threshold go to the blob store and only
 * their reference enters workflow history; on the way back into the sandbox they are resolved.
 */
import type {
  BlobRef,
  EffectOutcome,
  JobInput,
  Json,
  PlannedEffect,
  ReplayRound,
  Round,
  RunnableJob,
  StepRecord,
  StepText,
} from '../core/journal.ts';
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

  /** A step as the sandbox reported it: parsed when small, else stored as the text it is (its objects are never built here). */
  async offloadStep({ index, name, json }: StepText): Promise<StepRecord> {
    if (json.length <= this.thresholdBytes) return { index, name, value: JSON.parse(json) as Json };
    return { index, name, ref: await this.store.put(Buffer.from(json)) };
  }

  /** A journaled step as the sandbox replays it: JSON text, read from the blob store as it is (never parsed here). */
  async resolveStep({ index, name, value, ref }: StepRecord): Promise<StepText> {
    return { index, name, json: ref ? (await this.store.get(ref)).toString('utf8') : JSON.stringify(value ?? null) };
  }

  /** A job's script and input travel by reference when large: every run and sandbox opening carries the job. */
  async offloadJob(job: JobInput): Promise<JobInput> {
    const { code, input, ...rest } = job;
    const script = await this.offload(code);
    const data = await this.offload(input);
    return {
      ...rest,
      ...(script.ref ? { codeRef: script.ref } : { code }),
      ...(data.ref ? { inputRef: data.ref } : { input }),
    };
  }

  /** The job's script, inline or by reference. */
  async script(job: JobInput): Promise<string> {
    if (job.codeRef) return (await this.load(job.codeRef)) as string;
    if (job.code === undefined) throw new Error(`job ${job.jobId} carries no script (neither code nor codeRef)`);
    return job.code;
  }

  /** The job as its sandbox runs it, script and input at hand. */
  async resolveJob(job: JobInput): Promise<RunnableJob> {
    const { codeRef: _code, inputRef, ...rest } = job;
    return { ...rest, code: await this.script(job), ...(inputRef ? { input: await this.load(inputRef) } : {}) };
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
  async resolveRound(round: Round): Promise<ReplayRound> {
    return {
      now: round.now,
      steps: await Promise.all(round.steps.map((s) => this.resolveStep(s))),
      effects: await Promise.all(
        round.effects.map(async (e) => ({ ...e, outcome: await this.resolveOutcome(e.outcome) })),
      ),
    };
  }
}
