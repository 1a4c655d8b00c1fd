/**
 * Privacy as the other layers use it: tokenize what goes to the model, restore what goes to the
 * APIs, purge a principal's vault. The MCP server tokenizes its answers; a worker restores tokens
 * in a job's requests and tokenizes what it writes where the Temporal UI shows it (progress,
 * logs, activity summaries). Both get the blob store and the codec key from the layers above.
 */
import type { BlobStore } from '../blobs/store.ts';
import { type PrivacyConfig, restoresFor } from './config.ts';
import { BUILT_IN_DETECTORS, type Detector, patternDetector } from './detectors.ts';
import { JobProvenance, PublicValuesStore } from './public-values.ts';
import { type OutgoingRequest, restoreRequest } from './restore.ts';
import { RecordSeal } from './seal.ts';
import { type AsIs, personalDataIn, tokenizeJson, tokenizeText, type TokenizeRules } from './tokenize.ts';
import { Vault } from './vault.ts';

const DAY_MS = 24 * 60 * 60 * 1000;

export interface PrivacyOptions {
  store: BlobStore;
  /** The payload codec key's 32 bytes, when one is configured: the vault is then encrypted at rest. */
  codecKey?: Buffer;
  /** The clock of the vault's generations (tests move it). */
  now?: () => number;
}

export class Privacy {
  readonly config: PrivacyConfig;
  readonly vault: Vault;
  /** The jobs' public values (`providers.public`), kept by the workers, read by the MCP servers. */
  readonly publicValues: PublicValuesStore;
  private readonly rules: TokenizeRules;
  /** The detectors alone, for values whose keys are the product's own (an answer's `error.name`, a spec's parameters). */
  private readonly detectorsOnly: TokenizeRules;

  constructor(config: PrivacyConfig, options: PrivacyOptions) {
    this.config = config;
    this.vault = new Vault({ ...options, retentionMs: config.retentionDays * DAY_MS });
    this.publicValues = new PublicValuesStore(options.store, new RecordSeal(options.codecKey));
    // The operator's patterns come first: where they overlap a built-in detector, the operator meant it.
    const detectors: Detector[] = [
      ...config.patterns.map((p) => patternDetector(p.kind, p.regex, p.flags)),
      ...(['iban', 'card', 'email', 'phone'] as const)
        .filter((name) => config.detectors.includes(name))
        .map((name) => BUILT_IN_DETECTORS[name]),
    ];
    this.rules = { detectors, fields: new Map(config.fields.map((f) => [f.key.toLowerCase(), f.kind])) };
    this.detectorsOnly = { detectors, fields: new Map() };
  }

  get enabled(): boolean {
    return this.config.enabled;
  }

  /**
   * `value` (JSON) with personal data replaced by the principal's tokens; unchanged when privacy is
   * off. Field rules apply to data a script produced (`{ fieldRules: true }`, the default); the
   * envelope of an answer, whose keys are the product's own, takes the detectors alone.
   */
  tokenize<T>(
    principal: string,
    value: T,
    { fieldRules = true, asIs }: { fieldRules?: boolean; asIs?: AsIs } = {},
  ): Promise<T> {
    if (!this.enabled) return Promise.resolve(value);
    return tokenizeJson(value, fieldRules ? this.rules : this.detectorsOnly, this.vault.of(principal), asIs);
  }

  /**
   * A text (a log line, a message) with the detectors' findings replaced; unchanged when privacy is
   * off. `asIs`: a job's public values, shown as they are unless the principal holds a token for them.
   */
  tokenizeText(principal: string, text: string, asIs?: AsIs): Promise<string> {
    return this.enabled ? tokenizeText(text, this.rules, this.vault.of(principal), asIs) : Promise.resolve(text);
  }

  /** Whether some providers' responses are public (`providers.public`): jobs then keep their public values. */
  get hasPublicProviders(): boolean {
    return this.enabled && this.config.providers.public.length > 0;
  }

  /** A new tracker of where one job's personal data comes from (its session feeds it the responses). */
  provenance(): JobProvenance {
    const publicProviders = new Set(this.config.providers.public);
    return new JobProvenance(
      (provider) => publicProviders.has(provider),
      (value) => personalDataIn(value, this.rules).map((s) => s.value),
    );
  }

  /** A job's public values, for the answers about it (empty when no provider is public). */
  async publicValuesOf(jobId: string): Promise<Set<string>> {
    return this.hasPublicProviders ? this.publicValues.load(jobId) : new Set();
  }

  /**
   * The request with the owner's tokens replaced by their values, for a provider that gets real
   * values (`providers.only` / `except`); throws PrivacyTokenError for a token the owner does not
   * hold. Runs for every job started with privacy on, whatever this process's `enabled` says.
   */
  restore<R extends OutgoingRequest>(owner: string, request: R, label: string): Promise<R> {
    if (!restoresFor(this.config, request.provider)) return Promise.resolve(request);
    return restoreRequest(request, label, this.vault.of(owner));
  }

  purge(principal: string): Promise<number> {
    return this.vault.purge(principal);
  }
}
