/**
 * Replacing personal data with tokens in JSON values and texts. Strings are searched by the
 * detectors (an email inside a sentence becomes `[EMAIL_3]` in place); strings and numbers under a
 * field rule's key, or in an array there, are replaced whole (`"name": "Ada Lovelace"` →
 * `"name": "[NAME_1]"`), while an object under the key is searched like any other (so a JSON
 * schema's `name` property stays readable); object keys are searched too (a count per email). Strings that are already one token stay as they are, so
 * tokenizing twice changes nothing.
 *
 * Two passes: the first finds every value and asks the vault for all their tokens at once (one
 * vault write however many new values), the second builds the copy. A value with nothing to
 * replace costs no vault access at all.
 */
import { type Detector, type Finding, findPersonalData } from './detectors.ts';
import type { PrincipalVault, Sighting } from './vault.ts';
import { parseToken } from './tokens.ts';

export interface TokenizeRules {
  detectors: readonly Detector[];
  /** Lower-cased JSON key → kind of the values under it. */
  fields: ReadonlyMap<string, string>;
}

/** What one tokenizing pass found: sightings to ask the vault for, and each string's findings for the second pass. */
class Scan {
  readonly sightings: Sighting[] = [];
  private readonly seen = new Set<string>();
  private readonly findings = new Map<string, Finding[]>();
  private readonly rules: TokenizeRules;

  constructor(rules: TokenizeRules) {
    this.rules = rules;
  }

  /** The findings in a string (computed once per distinct string). */
  findingsOf(text: string): Finding[] {
    let found = this.findings.get(text);
    if (!found) {
      found = findPersonalData(text, this.rules.detectors);
      this.findings.set(text, found);
      for (const f of found) this.saw(f.kind, text.slice(f.start, f.end));
    }
    return found;
  }

  fieldKind(key: string): string | undefined {
    return this.rules.fields.size > 0 ? this.rules.fields.get(key.toLowerCase()) : undefined;
  }

  saw(kind: string, value: string): void {
    const key = `${kind}\u0000${value}`;
    if (this.seen.has(key)) return;
    this.seen.add(key);
    this.sightings.push({ kind, value });
  }
}

/** A leaf under a field rule that is personal data: a non-empty string that is not a token already, or a number. */
function wholeValue(value: unknown): string | undefined {
  if (typeof value === 'number') return String(value);
  if (typeof value === 'string' && value !== '' && !parseToken(value)) return value;
  return undefined;
}

function scan(value: unknown, s: Scan, fieldKind: string | undefined): void {
  if (fieldKind !== undefined) {
    const whole = wholeValue(value);
    if (whole !== undefined) s.saw(fieldKind, whole);
  } else if (typeof value === 'string') {
    s.findingsOf(value);
  }
  if (value === null || typeof value !== 'object') return;
  if (Array.isArray(value)) {
    for (const item of value) scan(item, s, fieldKind);
    return;
  }
  for (const [key, item] of Object.entries(value)) {
    s.findingsOf(key);
    scan(item, s, s.fieldKind(key));
  }
}

function replaceIn(text: string, findings: Finding[], tokens: Map<string, string>): string {
  if (findings.length === 0) return text;
  let out = '';
  let last = 0;
  for (const f of findings) {
    out += text.slice(last, f.start) + tokens.get(`${f.kind}\u0000${text.slice(f.start, f.end)}`)!;
    last = f.end;
  }
  return out + text.slice(last);
}

function rebuild(value: unknown, s: Scan, tokens: Map<string, string>, fieldKind: string | undefined): unknown {
  if (fieldKind !== undefined) {
    const whole = wholeValue(value);
    if (whole !== undefined) {
      const token = tokens.get(`${fieldKind}\u0000${whole}`)!;
      return token === whole ? value : token; // a public value stays as it was (a number too)
    }
  } else if (typeof value === 'string') {
    return replaceIn(value, s.findingsOf(value), tokens);
  }
  if (value === null || typeof value !== 'object') return value;
  if (Array.isArray(value)) return value.map((item) => rebuild(item, s, tokens, fieldKind));
  const out: Record<string, unknown> = {};
  for (const [key, item] of Object.entries(value)) {
    out[replaceIn(key, s.findingsOf(key), tokens)] = rebuild(item, s, tokens, s.fieldKind(key));
  }
  return out;
}

/** Values shown as they are unless the vault already holds a token for them (a job's public values). */
export type AsIs = ReadonlySet<string> | undefined;

async function tokensOf(s: Scan, vault: PrincipalVault, asIs: AsIs): Promise<Map<string, string>> {
  const tokens = await vault.tokensFor(s.sightings, asIs);
  return new Map(s.sightings.map((sighting, i) => [`${sighting.kind}\u0000${sighting.value}`, tokens[i]]));
}

/** The personal data in a JSON value, each distinct value once, without asking the vault. */
export function personalDataIn(value: unknown, rules: TokenizeRules): Sighting[] {
  const s = new Scan(rules);
  scan(value, s, undefined);
  return s.sightings;
}

/** A copy of the JSON value `value` with its personal data replaced by the principal's tokens (the same value when there is none). */
export async function tokenizeJson<T>(value: T, rules: TokenizeRules, vault: PrincipalVault, asIs?: AsIs): Promise<T> {
  const s = new Scan(rules);
  scan(value, s, undefined);
  if (s.sightings.length === 0) return value;
  return rebuild(value, s, await tokensOf(s, vault, asIs), undefined) as T;
}

/** `text` with the personal data the detectors find replaced (field rules need JSON keys, so they do not apply). */
export async function tokenizeText(
  text: string,
  rules: TokenizeRules,
  vault: PrincipalVault,
  asIs?: AsIs,
): Promise<string> {
  const s = new Scan(rules);
  const findings = s.findingsOf(text);
  if (findings.length === 0) return text;
  return replaceIn(text, findings, await tokensOf(s, vault, asIs));
}
