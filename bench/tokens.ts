/**
 * `npm run bench:tokens`: what the tool surface costs a model's context, and what search costs.
 *
 * 1. Tokens (o200k_base) of our tools/list, read from a real MCP server (createMcpServer over an
 *    in-memory transport), against the one-tool-per-operation conversion of the same specs: each
 *    operation a tool named by its operationId, described by summary + description, whose input
 *    schema holds every parameter and the request body (full), or only the required ones. For the
 *    Cloudflare spec alone, and for all providers together (Cloudflare + the demo crm and sheets).
 * 2. `search` latency over the Cloudflare spec (median, p95 of 200 varied searches) and the heap
 *    the warm search sandbox holds.
 * 3. Request validation against the Cloudflare spec: time per request.
 *
 * No Temporal server is needed: listing tools and searching never start a job.
 */
import { Client as McpClient } from '@modelcontextprotocol/sdk/client/index.js';
import { InMemoryTransport } from '@modelcontextprotocol/sdk/inMemory.js';
import { Client } from '@temporalio/client';
import { demoProvidersConfig } from '../demo-apis/index.ts';
import { loadSpec, type LoadedSpec, type Operation, specRecord, type SpecRecord } from '../providers/spec.ts';
import { RequestValidator } from '../providers/validate.ts';
import { SpecSearch } from '../sandbox/search.ts';
import { createBlobStore } from '../blobs/index.ts';
import { countTokens, ResultBudget } from '../server/budget.ts';
import { parseConfig } from '../cli/config.ts';
import { JobService } from '../jobs/service.ts';
import { createMcpServer } from '../server/mcp.ts';
import { CLOUDFLARE_SPEC } from '../test/fixtures/cloudflare.ts';

const SEARCHES = 200;

type Schema = Record<string, unknown>;
interface Parameter {
  name: string;
  in: string;
  required?: boolean;
  description?: string;
  schema?: Schema;
}

/** The tools/list our MCP server answers for these providers, through a real MCP client. */
async function ourToolsList(providers: Record<string, unknown>, search: SpecSearch): Promise<unknown[]> {
  const config = parseConfig({ providers }, undefined, {});
  // A client that never connects: listing tools starts no job.
  const jobs = new JobService(new Client(), config);
  const server = createMcpServer({
    jobs,
    budget: new ResultBudget(config.results.maxTokens, createBlobStore(config.blobs, config.dataDir)),
    search,
    providers: Object.keys(config.providers),
    defaultWaitSeconds: config.defaultWaitSeconds,
  });
  const client = new McpClient({ name: 'bench-tokens', version: '0' });
  const [clientSide, serverSide] = InMemoryTransport.createLinkedPair();
  await Promise.all([server.connect(serverSide), client.connect(clientSide)]);
  const { tools } = await client.listTools();
  await client.close();
  await server.close();
  return tools;
}

/** A loaded spec, and its operations with every schema written out in place (as a tool list would carry them). */
interface Loaded {
  spec: LoadedSpec;
  operations: Operation[];
}

async function load(provider: string, source: string): Promise<Loaded> {
  const spec = await loadSpec(provider, source);
  const record = specRecord(spec);
  if (!record) throw new Error(spec.error);
  return { spec, operations: record.operations.map((op) => expandRefs(op, record.schemas) as Operation) };
}

/** `value` with each `{ $ref }` replaced by its schema from `schemas`; a cycle stays a `$ref` where it closes. */
function expandRefs(value: unknown, schemas: SpecRecord['schemas'], open = new Set<string>()): unknown {
  if (typeof value !== 'object' || value === null) return value;
  if (Array.isArray(value)) return value.map((v) => expandRefs(v, schemas, open));
  const ref = (value as { $ref?: unknown }).$ref;
  if (typeof ref === 'string' && ref in schemas) {
    if (open.has(ref)) return { $ref: ref };
    open.add(ref);
    const expanded = expandRefs(schemas[ref], schemas, open);
    open.delete(ref);
    return expanded;
  }
  return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, expandRefs(v, schemas, open)]));
}

/** The naive MCP server: one tool per operation. */
function toolPerOperation(specs: Loaded[], requiredOnly: boolean): unknown[] {
  return specs.flatMap((spec) => spec.operations.map((op) => operationTool(op, requiredOnly)));
}

function operationTool(op: Operation, requiredOnly: boolean) {
  const properties: Record<string, unknown> = {};
  const required: string[] = [];
  for (const p of (op.parameters ?? []) as Parameter[]) {
    if (requiredOnly && !p.required) continue;
    properties[p.name] = { ...(p.schema ?? {}), ...(p.description ? { description: p.description } : {}) };
    if (p.required) required.push(p.name);
  }
  const body = op.requestBody as { required?: boolean; description?: string; schema?: Schema } | undefined;
  if (body?.schema && (!requiredOnly || body.required)) {
    const schema = requiredOnly ? requiredPart(body.schema) : body.schema;
    properties.body = { ...(schema as Schema), ...(body.description ? { description: body.description } : {}) };
    if (body.required) required.push('body');
  }
  return {
    name: op.operationId ?? `${op.method} ${op.path}`,
    description: [op.summary, op.description].filter(Boolean).join('\n'),
    inputSchema: { type: 'object', properties, ...(required.length ? { required } : {}) },
  };
}

/** A schema with only its required properties, at every level. */
function requiredPart(schema: unknown, seen = new Set<unknown>()): unknown {
  if (typeof schema !== 'object' || schema === null || seen.has(schema)) return schema;
  seen.add(schema);
  if (Array.isArray(schema)) return schema.map((s) => requiredPart(s, seen));
  const out: Schema = {};
  for (const [key, value] of Object.entries(schema)) {
    if (key === 'properties' && typeof value === 'object' && value !== null) {
      const keep = new Set(((schema as Schema).required as string[] | undefined) ?? []);
      out.properties = Object.fromEntries(
        Object.entries(value)
          .filter(([name]) => keep.has(name))
          .map(([name, s]) => [name, requiredPart(s, seen)]),
      );
    } else out[key] = typeof value === 'object' ? requiredPart(value, seen) : value;
  }
  return out;
}

function tokensOf(value: unknown): number {
  return countTokens(JSON.stringify(value));
}

/** Varied searches an agent would write: by path, by words in summaries, by id, by tag, a schema lookup. */
function searchQueries(count: number): string[] {
  const words = [
    'zones',
    'dns_records',
    'workers',
    'accounts',
    'firewall',
    'rules',
    'certificates',
    'ssl',
    'cache',
    'analytics',
    'members',
    'tokens',
    'pages',
    'r2',
    'kv',
    'd1',
    'queues',
    'images',
    'stream',
    'tunnels',
    'access',
    'gateway',
    'load_balancers',
    'waiting_rooms',
    'rulesets',
  ];
  const shapes = [
    (w: string) =>
      `async () => spec.operations.filter((o) => o.path.includes('/${w}')).map((o) => o.method + ' ' + o.path)`,
    (w: string) =>
      `async () => spec.operations.filter((o) => /${w.replace(/_/g, ' ')}/i.test(o.summary ?? '')).map((o) => ({ id: o.operationId, summary: o.summary }))`,
    (w: string) =>
      `async () => spec.operations.filter((o) => (o.tags ?? []).some((t) => t.toLowerCase().includes('${w.slice(0, 4)}'))).length`,
    (w: string) =>
      `async () => { const o = spec.operations.find((o) => o.method === 'POST' && o.path.includes('${w}')); return o && { path: o.path, body: o.requestBody }; }`,
    (w: string) =>
      `async () => spec.operations.filter((o) => o.path.includes('${w}')).flatMap((o) => (o.parameters ?? []).filter((p) => p.required).map((p) => p.name))`,
    (w: string) =>
      `async () => Object.keys(spec.operations.find((o) => o.method === 'GET' && o.path.endsWith('${w}'))?.responses ?? {})`,
    (w: string) =>
      `async () => spec.operations.filter((o) => o.description?.toLowerCase().includes('${w.replace(/_/g, ' ')}')).slice(0, 5).map((o) => o.operationId)`,
    (w: string) =>
      `async () => spec.operations.find((o) => o.operationId?.includes('${w.replace(/_/g, '-')}'))?.parameters ?? null`,
  ];
  return Array.from({ length: count }, (_, i) =>
    shapes[i % shapes.length](words[Math.floor(i / shapes.length) % words.length]),
  );
}

function percentile(sorted: number[], p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor(p * sorted.length))];
}

const format = (n: number) => n.toLocaleString('en-US');

async function main() {
  const started = performance.now();
  await loadSpec('cloudflare', CLOUDFLARE_SPEC);
  const loadMs = performance.now() - started;
  const cloudflare = await load('cloudflare', CLOUDFLARE_SPEC);
  const demo = demoProvidersConfig({ crm: { url: 'http://127.0.0.1:4001' }, sheets: { url: 'http://127.0.0.1:4002' } });
  const [crm, sheets] = await Promise.all([load('crm', demo.crm.openapi), load('sheets', demo.sheets.openapi)]);
  const cloudflareProvider = {
    openapi: CLOUDFLARE_SPEC,
    baseUrl: 'https://api.cloudflare.com/client/v4',
    auth: { type: 'bearer', tokenEnv: 'CLOUDFLARE_API_TOKEN' },
  };

  const cases = [
    { name: 'Cloudflare', specs: [cloudflare], providers: { cloudflare: cloudflareProvider } },
    {
      name: 'Cloudflare + crm + sheets',
      specs: [cloudflare, crm, sheets],
      providers: { cloudflare: cloudflareProvider, ...demo },
    },
  ];
  const rows = [];
  let cloudflareSearch: SpecSearch | undefined;
  for (const c of cases) {
    const search = await SpecSearch.create(c.specs.map((s) => s.spec));
    const ours = tokensOf(await ourToolsList(c.providers, search));
    const full = tokensOf(toolPerOperation(c.specs, false));
    const requiredOnly = tokensOf(toolPerOperation(c.specs, true));
    const operations = c.specs.reduce((n, s) => n + s.operations.length, 0);
    rows.push({ name: c.name, operations, ours, full, requiredOnly });
    if (c.specs.length === 1) cloudflareSearch = search;
    else search.dispose();
  }

  const queries = searchQueries(SEARCHES);
  for (const q of queries.slice(0, 10)) await cloudflareSearch!.run(q); // warm-up
  const times: number[] = [];
  for (const q of queries) {
    const t = performance.now();
    await cloudflareSearch!.run(q);
    times.push(performance.now() - t);
  }
  times.sort((a, b) => a - b);
  const heapBytes = await cloudflareSearch!.heapBytes();
  cloudflareSearch!.dispose();

  const validator = new RequestValidator({ provider: 'cloudflare', operations: cloudflare.operations });
  const requests = cloudflare.operations.map((op) => ({
    method: op.method,
    path: op.path.replace(/\{[^}]*\}/g, '023e105f4ecef8ad9ca31a8372d0c353'),
    query: Object.fromEntries(
      ((op.parameters ?? []) as Parameter[]).filter((p) => p.in === 'query' && p.required).map((p) => [p.name, 'x']),
    ),
  }));
  for (const r of requests) validator.check(r); // warm-up
  let t = performance.now();
  for (const r of requests) validator.check(r);
  const validateMicros = ((performance.now() - t) * 1000) / requests.length;
  const typo = { method: 'GET', path: '/zone/023e105f4ecef8ad9ca31a8372d0c353/dns_record' };
  t = performance.now();
  for (let i = 0; i < 20; i++) validator.check(typo);
  const closestMs = (performance.now() - t) / 20;

  console.log('\ntools/list tokens (o200k_base)\n');
  console.log(
    '| providers | operations | ours | one tool per operation, full | required parameters only | reduction (full / required) |',
  );
  console.log('|---|---:|---:|---:|---:|---:|');
  for (const r of rows) {
    console.log(
      `| ${r.name} | ${format(r.operations)} | ${format(r.ours)} | ${format(r.full)} | ${format(r.requiredOnly)} | ×${format(Math.round(r.full / r.ours))} / ×${format(Math.round(r.requiredOnly / r.ours))} |`,
    );
  }
  console.log(
    `\nsearch over the Cloudflare spec (${SEARCHES} searches): median ${times[Math.floor(times.length / 2)].toFixed(2)} ms, p95 ${percentile(times, 0.95).toFixed(2)} ms, max ${times.at(-1)!.toFixed(2)} ms`,
  );
  console.log(
    `warm search sandbox heap: ${(heapBytes / 1024 / 1024).toFixed(1)} MiB (spec loaded and reduced in ${format(Math.round(loadMs))} ms)`,
  );
  console.log(
    `request validation: ${validateMicros.toFixed(1)} µs per matching request; ${closestMs.toFixed(1)} ms for a miss (closest operations ranked)`,
  );
  console.log(
    `BENCH_TOKENS_JSON ${JSON.stringify({
      tools: rows,
      search: {
        count: SEARCHES,
        medianMs: times[Math.floor(times.length / 2)],
        p95Ms: percentile(times, 0.95),
        heapBytes,
      },
      validation: { microsPerRequest: validateMicros, missMs: closestMs },
    })}`,
  );
}

await main();
