/**
 * Checks a script's request against its provider's OpenAPI operations before it is sent, so a
 * wrong path or a forgotten parameter fails inside the script with the operations it probably
 * meant, instead of as an opaque 404 from the API.
 *
 * Lenient by design: it refuses only what no operation can match (method + path template) and
 * required query parameters that are absent. Headers, bodies and value types are the API's call.
 */
import { isMcpProvider, type ProviderConfig } from './config.ts';
import { type LoadedSpec, type Operation, specRecord } from './spec.ts';

export interface CheckedRequest {
  method: string;
  /** Relative to the provider's base URL; may carry a query string. */
  path: string;
  query?: Record<string, unknown>;
}

interface Template {
  method: string;
  /** `GET /leads/{id} (getLead)`, for messages. */
  label: string;
  /** Per path segment: a literal, or a matcher for a segment holding parameters (`{id}`, `{name}.json`). */
  segments: Array<string | { pattern: RegExp; params: string[] }>;
  literals: number;
  requiredQuery: string[];
}

/** Values a script produces when it interpolates a value it does not have. */
const PLACEHOLDER_VALUES = new Set(['', 'undefined', 'null', 'NaN', '[object Object]']);
const CLOSEST_SHOWN = 3;

/** The operations to check against, or why there are none: the spec failed to load. */
export type ValidatedSpec = { provider: string; operations: Operation[] } | { provider: string; error: string };

export class RequestValidator {
  readonly provider: string;
  private readonly templates: Template[];
  /** `${method} ${segment count}` → templates: a request is compared only with those of its method and length. */
  private readonly index = new Map<string, Template[]>();
  /** Set when the provider's spec failed to load: every request is refused with it. */
  private readonly specError: string | undefined;

  constructor(spec: ValidatedSpec) {
    this.provider = spec.provider;
    this.specError = 'error' in spec ? spec.error : undefined;
    this.templates = 'error' in spec ? [] : spec.operations.map(compile);
    for (const t of this.templates) {
      const key = `${t.method} ${t.segments.length}`;
      const bucket = this.index.get(key);
      if (bucket) bucket.push(t);
      else this.index.set(key, [t]);
    }
    // Most literal first, so a missing parameter is reported for GET /zones/settings rather than GET /zones/{id}.
    for (const bucket of this.index.values()) bucket.sort((a, b) => b.literals - a.literals);
  }

  /** undefined when the request fits an operation; else what is wrong and which operations are closest. */
  check(request: CheckedRequest): string | undefined {
    const q = request.path.indexOf('?');
    const segments = splitPath(q < 0 ? request.path : request.path.slice(0, q));
    const label = `${this.provider}: ${request.method} ${request.path}`;
    if (this.specError !== undefined)
      return `${label} was not sent: requests to ${this.provider} are checked against its OpenAPI spec, which failed to load. ${this.specError}. Fix the spec and restart the workers, or set validateRequests: false for ${this.provider} to send requests unchecked.`;
    // HEAD is answered by GET handlers.
    const methods = request.method === 'HEAD' ? ['HEAD', 'GET'] : [request.method];
    const matches = methods
      .flatMap((m) => this.index.get(`${m} ${segments.length}`) ?? [])
      .filter((t) => matchesPath(t, segments));
    if (matches.length === 0) {
      return `${label} matches no operation of the provider's spec. Closest: ${this.closest(request.method, segments).join(', ')}. Look operations up with the search tool.`;
    }
    const given = new Set([
      ...Object.keys(request.query ?? {}),
      ...new URLSearchParams(q < 0 ? '' : request.path.slice(q + 1)).keys(),
    ]);
    let firstProblem: string | undefined;
    for (const t of matches) {
      const problem = missingParameters(t, segments, given);
      if (!problem) return undefined;
      firstProblem ??= `${label}: ${t.label} needs ${problem}.`;
    }
    return firstProblem;
  }

  /** Operations ranked by how little must change to reach them from the request: path segments first, then the method. */
  private closest(method: string, segments: string[]): string[] {
    // Operations share most of their literal segments: compare each pair of words once.
    const known = segments.map(() => new Map<string, number>());
    const distance = (i: number, word: string) => {
      let d = known[i].get(word);
      if (d === undefined) known[i].set(word, (d = wordDistance(segments[i], word)));
      return d;
    };
    return this.templates
      .map((t) => ({ t, cost: pathDistance(segments, t.segments, distance) + (t.method === method ? 0 : 0.5) }))
      .sort((a, b) => a.cost - b.cost)
      .slice(0, CLOSEST_SHOWN)
      .map(({ t }) => t.label);
  }
}

/**
 * One validator per HTTP provider that wants one (`validateRequests`), from the specs the process
 * loaded (providers/ready.ts). A spec without operations would refuse every call, so its provider
 * goes unchecked; `warn` says so. A spec that failed to load refuses every call, naming its error.
 */
export function requestValidators(
  providers: Record<string, ProviderConfig>,
  specs: LoadedSpec[],
  warn: (message: string) => void = console.warn,
): Record<string, RequestValidator> {
  const validators: Record<string, RequestValidator> = {};
  for (const spec of specs) {
    const provider = providers[spec.provider];
    if (!provider || isMcpProvider(provider) || !provider.validateRequests) continue;
    const operations = specRecord(spec)?.operations;
    if (!operations) validators[spec.provider] = new RequestValidator({ provider: spec.provider, error: spec.error! });
    else if (operations.length === 0)
      warn(
        `The OpenAPI spec of provider "${spec.provider}" (${provider.openapi}) has no operations, so requests to it are sent without checking them.`,
      );
    else validators[spec.provider] = new RequestValidator({ provider: spec.provider, operations });
  }
  return validators;
}

function compile(op: Operation): Template {
  const segments = splitPath(op.path).map((s) => {
    if (!s.includes('{')) return s;
    const params: string[] = [];
    const source = s.split(/(\{[^}]*\})/).map((part) => {
      const param = /^\{([^}]*)\}$/.exec(part);
      if (!param) return escapeRegExp(part);
      params.push(param[1]);
      return '(.*)';
    });
    return { pattern: new RegExp(`^${source.join('')}$`, 's'), params };
  });
  const requiredQuery = (op.parameters ?? []).filter((p) => p.in === 'query' && p.required).map((p) => p.name);
  return {
    method: op.method,
    label: `${op.method} ${op.path}${op.operationId ? ` (${op.operationId})` : ''}`,
    segments,
    literals: segments.filter((s) => typeof s === 'string').length,
    requiredQuery,
  };
}

/** Segments without the leading slash; a trailing slash is not significant; percent-encoding is decoded. */
function splitPath(path: string): string[] {
  const segments = path.replace(/^\/+/, '').replace(/\/+$/, '').split('/');
  if (segments.length === 1 && segments[0] === '') return [];
  return segments.map((s) => {
    try {
      return decodeURIComponent(s);
    } catch {
      return s;
    }
  });
}

function matchesPath(t: Template, segments: string[]): boolean {
  return t.segments.every((s, i) => (typeof s === 'string' ? s === segments[i] : s.pattern.test(segments[i])));
}

/** A path parameter filled with a placeholder (`/leads/undefined`, `/leads/{id}`) or a required query parameter that is absent. */
function missingParameters(t: Template, segments: string[], given: Set<string>): string | undefined {
  for (const [i, s] of t.segments.entries()) {
    if (typeof s === 'string') continue;
    const values = s.pattern.exec(segments[i])!.slice(1);
    const bad = s.params.findIndex((_, k) => PLACEHOLDER_VALUES.has(values[k]) || /^\{.*\}$/.test(values[k]));
    if (bad >= 0)
      return `the path parameter "${s.params[bad]}", but the path has ${JSON.stringify(values[bad])} in its place`;
  }
  const missing = t.requiredQuery.filter((name) => !given.has(name));
  if (missing.length === 0) return undefined;
  return `the query parameter${missing.length > 1 ? 's' : ''} ${missing.map((n) => `"${n}"`).join(', ')}: pass ${missing.length > 1 ? 'them' : 'it'} in \`query\``;
}

/**
 * Edit distance over path segments: inserting or dropping a segment costs 1, a parameter matches
 * any segment, two literals cost their normalized edit distance (`lead` → `leads`: 0.2).
 */
function pathDistance(
  request: string[],
  template: Template['segments'],
  words: (i: number, word: string) => number,
): number {
  let previous = Array.from({ length: template.length + 1 }, (_, j) => j);
  for (let i = 1; i <= request.length; i++) {
    const row = [i];
    for (let j = 1; j <= template.length; j++) {
      const t = template[j - 1];
      const substitution = typeof t === 'string' ? words(i - 1, t) : 0;
      row.push(Math.min(previous[j] + 1, row[j - 1] + 1, previous[j - 1] + substitution));
    }
    previous = row;
  }
  return previous[template.length];
}

/** Levenshtein distance divided by the longer length: 0 for equal words, 1 for unrelated ones. */
function wordDistance(a: string, b: string): number {
  if (a === b) return 0;
  const longer = Math.max(a.length, b.length);
  if (longer === 0) return 0;
  let previous = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    const row = [i];
    for (let j = 1; j <= b.length; j++) {
      row.push(Math.min(previous[j] + 1, row[j - 1] + 1, previous[j - 1] + (a[i - 1] === b[j - 1] ? 0 : 1)));
    }
    previous = row;
  }
  return previous[b.length] / longer;
}

function escapeRegExp(text: string): string {
  return text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}
