/**
 * The `privacy` section: whether answers to the model carry tokens instead of personal data, what
 * counts as personal data (built-in detectors, field rules by JSON key, the operator's patterns),
 * how long a principal's tokens stay valid, which providers get the real values back, and which
 * providers' responses are public data.
 *
 * Every worker and MCP server must run with the same section: the servers tokenize, the workers
 * restore, and both read the vault the same way.
 */
import { z } from 'zod';
import { configObject } from '../core/config-object.ts';
import { BUILT_IN_DETECTORS, type BuiltInDetector } from './detectors.ts';
import { KIND, kindOfKey } from './tokens.ts';

const Kind = z.string().regex(KIND, 'a kind is upper-case words joined by "_", e.g. EMPLOYEE_ID');

/** `"name"` (kind NAME) or `{ "key": "fullName", "kind": "NAME" }`; keys match case-insensitively. */
export const FieldRule = z
  .union([z.string().min(1), configObject({ key: z.string().min(1), kind: Kind })])
  .transform((rule, ctx) => {
    if (typeof rule !== 'string') return rule;
    const kind = kindOfKey(rule);
    if (kind) return { key: rule, kind };
    ctx.addIssue({
      code: 'custom',
      message: 'this key makes no valid kind: write { "key": ..., "kind": "SOME_KIND" }',
    });
    return z.NEVER;
  });

export const PatternRule = configObject({
  kind: Kind,
  /** A JavaScript regular expression; every match is personal data of `kind`. */
  regex: z.string().min(1),
  flags: z
    .string()
    .regex(/^[imsu]*$/, 'flags may be i, m, s and u')
    .default(''),
}).refine(
  ({ regex, flags }) => {
    try {
      new RegExp(regex, flags);
      return true;
    } catch {
      return false;
    }
  },
  { message: 'not a valid JavaScript regular expression' },
);

export const PrivacyConfig = configObject({
  /** Tokenize every answer to the model, and restore tokens in requests to the APIs. */
  enabled: z.boolean().default(false),
  detectors: z
    .array(z.enum(Object.keys(BUILT_IN_DETECTORS) as [BuiltInDetector, ...BuiltInDetector[]]))
    .default(['email', 'phone', 'iban', 'card']),
  /** Values under these JSON keys are personal data whatever they look like (names, addresses). */
  fields: z.array(FieldRule).default([]),
  patterns: z.array(PatternRule).default([]),
  /**
   * A token stays valid at least this long after the model last saw it (and at most twice as long);
   * values not seen for twice this long are deleted from the vault.
   */
  retentionDays: z.number().positive().max(3650).default(30),
  /**
   * Restoring, per provider: which providers get tokens restored to the real values in their
   * requests: all of them by default, only those listed in `only`, never those in `except`. The
   * others receive tokens as the script wrote them (pseudonyms), e.g. an analytics or chat API that
   * must not see who is who.
   *
   * Tokenizing, per provider: the responses of the providers in `public` hold no personal data
   * (a product catalog, a public directory). What the detectors and field rules find in them is
   * shown as it is in the answers of the job that received it, unless another provider of that job
   * returned the same value too, or the principal already holds a token for it.
   */
  providers: configObject({
    only: z.array(z.string()).optional(),
    except: z.array(z.string()).default([]),
    public: z.array(z.string()).default([]),
  }).prefault({}),
}).prefault({});

export type PrivacyConfig = z.infer<typeof PrivacyConfig>;
export type FieldRule = z.infer<typeof FieldRule>;

/** Provider names the section mentions that are not configured providers (config errors). */
export function unknownPrivacyProviders(privacy: PrivacyConfig, providers: string[]): string[] {
  const named = [...(privacy.providers.only ?? []), ...privacy.providers.except, ...privacy.providers.public];
  return named.filter((name) => !providers.includes(name));
}

/** Whether requests to `provider` get tokens restored to real values. */
export function restoresFor(privacy: PrivacyConfig, provider: string): boolean {
  const { only, except } = privacy.providers;
  return (only === undefined || only.includes(provider)) && !except.includes(provider);
}
