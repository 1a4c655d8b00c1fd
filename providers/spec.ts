/**
 * A provider's OpenAPI spec, loaded for `search` and for request validation: read (a file, or a URL
 * within a time limit), parsed (JSON or YAML), reduced to its operations and the schemas they
 * reach, each schema once (providers/spec-reduce.ts), and cached by the source's content hash in
 * the blob store, so the MCP server and every worker reduce a given spec once between them.
 *
 * A spec that cannot be loaded fails its provider alone: the LoadedSpec carries the error (naming
 * the provider, the source and the cause) instead of the record, and the process carries on. A
 * later start retries: failures are never cached.
 */
import { createHash } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import { gunzipSync, gzipSync } from 'node:zlib';
import type { BlobStore } from '../blobs/store.ts';
import type { UpstreamTool } from './mcp-client.ts';
import { reduceDocument } from './spec-reduce.ts';

/** Changes whenever the reduction does, so records of an older reducer are never read. */
export const SPEC_FORMAT = 'durable-codemode/spec@1';
const CACHE_FOLDER = 'specs/v1';

/** A reduced JSON Schema; subschemas that are table entries appear as `{ $ref: pointer }`. */
export type Schema = Record<string, unknown> | boolean;

export interface Parameter {
  name: string;
  in: string;
  required: boolean;
  description?: string;
  deprecated?: boolean;
  schema?: Schema;
}

export interface RequestBody {
  required: boolean;
  description?: string;
  /** The JSON media type if there is one, else the first. */
  contentType?: string;
  schema?: Schema;
}

export interface Response {
  description?: string;
  schema?: Schema;
}

export interface Operation {
  /** Upper-case HTTP method. */
  method: string;
  /** Relative to the provider's base URL (the OpenAPI server URL, or Swagger 2 basePath). */
  path: string;
  operationId?: string;
  summary?: string;
  description?: string;
  tags?: string[];
  deprecated?: boolean;
  /** Path-level parameters merged in. */
  parameters?: Parameter[];
  requestBody?: RequestBody;
  /** Status → response. */
  responses?: Record<string, Response>;
}

/** One provider's spec as search and validation use it, and as the cache keeps it (JSON). */
export interface SpecRecord {
  format: typeof SPEC_FORMAT;
  title?: string;
  description?: string;
  version?: string;
  operations: Operation[];
  /**
   * Every schema reached through a `$ref` (and every composite schema reached through a shared
   * parameter, body or response), reduced once, by JSON pointer into the source document.
   */
  schemas: Record<string, Schema>;
  /** An upstream MCP server's tools (it has no operations). */
  tools?: UpstreamTool[];
  /** Defects the load tolerated, each with the JSON pointer where it was met (a `$ref` pointing nowhere). */
  warnings: string[];
}

/** A provider's spec, ready or failed. */
export interface LoadedSpec {
  provider: string;
  /** The file or URL it came from (or the upstream MCP server). */
  source: string;
  /** The SpecRecord as JSON text: what the search sandbox parses. Absent when the spec failed. */
  json?: string;
  /** Why the spec could not be loaded, naming the provider, the source and the cause. */
  error?: string;
  warnings: string[];
  /** Read from the cache rather than parsed and reduced here. */
  cached?: boolean;
}

export interface SpecLoadOptions {
  /** How long reading a URL may take before the provider is marked failed. */
  timeoutMs?: number;
  /** Where reduced specs are shared (the blob store's records); without it every load reduces. */
  cache?: BlobStore;
}

const DEFAULT_TIMEOUT_MS = 30_000;

/** Loads one provider's spec; never throws: a failure is the LoadedSpec's `error`. */
export async function loadSpec(provider: string, source: string, options: SpecLoadOptions = {}): Promise<LoadedSpec> {
  const timeoutMs = options.timeoutMs ?? DEFAULT_TIMEOUT_MS;
  try {
    const bytes = await readSource(source, timeoutMs);
    const key = `${CACHE_FOLDER}/${createHash('sha256').update(bytes).digest('hex')}`;
    const hit = options.cache ? await readCached(options.cache, key) : undefined;
    if (hit) return { provider, source, ...hit, cached: true };
    const { record, cacheable } = await reduceSource(bytes, source, timeoutMs);
    const json = JSON.stringify(record);
    if (options.cache && cacheable) await writeCached(options.cache, key, { json, warnings: record.warnings });
    return { provider, source, json, warnings: record.warnings };
  } catch (e) {
    return {
      provider,
      source,
      error: `Cannot load the OpenAPI spec of provider "${provider}" from ${source}: ${e instanceof Error ? e.message : String(e)}`,
      warnings: [],
    };
  }
}

/** The record of a loaded spec (parsed from its JSON); undefined for a failed one. */
export function specRecord(spec: LoadedSpec): SpecRecord | undefined {
  return spec.json === undefined ? undefined : (JSON.parse(spec.json) as SpecRecord);
}

/** An upstream MCP server's tools as a spec: no operations, its tools for search. */
export function toolsSpec(provider: string, tools: UpstreamTool[]): LoadedSpec {
  const record: SpecRecord = {
    format: SPEC_FORMAT,
    title: `MCP server ${provider}`,
    operations: [],
    schemas: {},
    tools,
    warnings: [],
  };
  return { provider, source: `MCP server ${provider}`, json: JSON.stringify(record), warnings: [] };
}

async function readSource(source: string, timeoutMs: number): Promise<Buffer> {
  if (!/^https?:\/\//i.test(source)) return readFile(source.startsWith('file:') ? fileURLToPath(source) : source);
  let response: globalThis.Response;
  try {
    response = await fetch(source, { signal: AbortSignal.timeout(timeoutMs) });
    if (!response.ok) throw new Error(`the server answered HTTP ${response.status} ${response.statusText}`);
    return Buffer.from(await response.arrayBuffer());
  } catch (e) {
    if (e instanceof Error && e.name === 'TimeoutError')
      throw new Error(`no complete answer within ${timeoutMs} ms (openapiTimeoutMs)`);
    // fetch() says only "fetch failed"; the cause says why (ECONNREFUSED, a DNS error, ...).
    const cause = e instanceof Error && e.cause instanceof Error ? `: ${e.cause.message}` : '';
    throw new Error(`${e instanceof Error ? e.message : String(e)}${cause}`);
  }
}

/** Parses and reduces; a spec that `$ref`s other files is bundled first, and not cached (its key covers one file). */
async function reduceSource(
  bytes: Buffer,
  source: string,
  timeoutMs: number,
): Promise<{ record: SpecRecord; cacheable: boolean }> {
  const doc = await parseDocument(bytes);
  if (!hasExternalRefs(doc)) return { record: reduceDocument(doc), cacheable: true };
  // Loaded only for the rare multi-file spec.
  const { bundle } = await import('@apidevtools/json-schema-ref-parser');
  // The root document is the operator's own choice, so it may live on localhost (the demo APIs
  // serve theirs); $refs to other URLs keep the library's default guard against internal addresses.
  const bundled = await bundle(source, doc as object, {
    resolve: { http: { safeUrlResolver: false, timeout: timeoutMs } },
    timeoutMs,
  });
  return { record: reduceDocument(bundled), cacheable: false };
}

async function parseDocument(bytes: Buffer): Promise<unknown> {
  const text = bytes.toString('utf8').replace(/^\uFEFF/, '');
  if (/^\s*[{[]/.test(text)) {
    try {
      return JSON.parse(text);
    } catch (e) {
      throw new Error(`the file is not valid JSON: ${(e as Error).message}`);
    }
  }
  // Loaded only for a YAML spec.
  const { load: parseYaml, JSON_SCHEMA } = await import('js-yaml');
  try {
    return parseYaml(text, { schema: JSON_SCHEMA });
  } catch (e) {
    throw new Error(`the file is neither JSON nor valid YAML: ${(e as Error).message}`);
  }
}

/** Whether any `$ref` names another file or URL (iteratively: specs nest deeply). */
function hasExternalRefs(doc: unknown): boolean {
  const stack = [doc];
  while (stack.length) {
    const value = stack.pop();
    if (typeof value !== 'object' || value === null) continue;
    if (!Array.isArray(value)) {
      const ref = (value as { $ref?: unknown }).$ref;
      if (typeof ref === 'string' && !ref.startsWith('#')) return true;
    }
    for (const child of Array.isArray(value) ? value : Object.values(value)) stack.push(child);
  }
  return false;
}

/**
 * Cached records are gzipped: a header line ({ format, warnings }), then the record's JSON. A record
 * that cannot be read (unreachable store, corrupt bytes) counts as absent: the spec is reduced again.
 */
async function readCached(cache: BlobStore, key: string): Promise<{ json: string; warnings: string[] } | undefined> {
  try {
    const bytes = await cache.getRecord(key);
    if (!bytes) return undefined;
    const text = gunzipSync(bytes).toString('utf8');
    const newline = text.indexOf('\n');
    const header = JSON.parse(text.slice(0, newline)) as { format?: string; warnings?: string[] };
    if (header.format !== SPEC_FORMAT || !Array.isArray(header.warnings)) return undefined;
    return { json: text.slice(newline + 1), warnings: header.warnings };
  } catch {
    return undefined;
  }
}

async function writeCached(cache: BlobStore, key: string, entry: { json: string; warnings: string[] }): Promise<void> {
  const header = JSON.stringify({ format: SPEC_FORMAT, warnings: entry.warnings });
  try {
    await cache.putRecord(key, gzipSync(`${header}\n${entry.json}`, { level: 1 }), { ifAbsent: true });
  } catch {
    // The next process reduces the spec again; nothing else depends on the cache.
  }
}
