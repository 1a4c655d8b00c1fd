/**
 * Request validation against the providers' OpenAPI specs: the demo CRM, a small spec with
 * required query parameters and partial path templates, and all 1,533 Cloudflare operations.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  demoProvidersConfig,
  startCrmApi,
  startSheetsApi,
  type CrmApi,
  type SheetsApi,
} from '../../demo-apis/index.ts';
import { loadSpec, specRecord, toolsSpec, type Operation } from '../../providers/spec.ts';
import { RequestValidator, requestValidators } from '../../providers/validate.ts';
import { startInProcessStack, testConfig, type InProcessStack } from '../harness.ts';
import { CLOUDFLARE_SPEC } from '../fixtures/cloudflare.ts';
import { CRM_SPEC_PATH as CRM_SPEC } from '../../demo-apis/crm.ts';

/** A provider's operations, as the worker loads them. */
async function operationsOf(provider: string, file: string): Promise<Operation[]> {
  const spec = await loadSpec(provider, file);
  expect(spec.error).toBeUndefined();
  return specRecord(spec)!.operations;
}

let tmp: string;
beforeAll(() => {
  tmp = mkdtempSync(join(tmpdir(), 'dcm-validate-'));
});
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

describe('RequestValidator on the demo CRM', () => {
  let crm: RequestValidator;
  beforeAll(async () => {
    crm = new RequestValidator({ provider: 'crm', operations: await operationsOf('crm', CRM_SPEC) });
  });

  it('accepts requests that fit an operation, path templates included', () => {
    expect(crm.check({ method: 'GET', path: '/leads' })).toBeUndefined();
    expect(crm.check({ method: 'GET', path: '/leads/', query: { email: 'a@b.c' } })).toBeUndefined();
    expect(crm.check({ method: 'GET', path: '/leads?email=a%40b.c' })).toBeUndefined();
    expect(crm.check({ method: 'GET', path: '/leads/lead_1' })).toBeUndefined();
    expect(crm.check({ method: 'HEAD', path: '/leads/lead_1' })).toBeUndefined();
    expect(crm.check({ method: 'DELETE', path: '/leads/lead%201' })).toBeUndefined();
    expect(crm.check({ method: 'POST', path: '/leads/batch' })).toBeUndefined();
  });

  it('names the closest operations when nothing matches', () => {
    expect(crm.check({ method: 'POST', path: '/lead' })).toBe(
      "crm: POST /lead matches no operation of the provider's spec. Closest: POST /leads (createLead), GET /leads (listLeads), POST /leads/batch (createLeadsBatch). Look operations up with the search tool.",
    );
    const wrongMethod = crm.check({ method: 'PUT', path: '/leads/lead_1' })!;
    expect(wrongMethod).toMatch(/^crm: PUT \/leads\/lead_1 matches no operation/);
    expect(wrongMethod).toContain('GET /leads/{id} (getLead)');
    expect(wrongMethod).toContain('DELETE /leads/{id} (deleteLead)');
    expect(crm.check({ method: 'GET', path: '/leads/lead_1/notes' })).toContain('Closest: GET /leads/{id} (getLead)');
  });

  it('reports a path parameter the script had no value for', () => {
    expect(crm.check({ method: 'GET', path: '/leads/undefined' })).toBe(
      'crm: GET /leads/undefined: GET /leads/{id} (getLead) needs the path parameter "id", but the path has "undefined" in its place.',
    );
    expect(crm.check({ method: 'DELETE', path: '/leads/{id}' })).toContain(
      'needs the path parameter "id", but the path has "{id}" in its place',
    );
  });
});

describe('RequestValidator on a spec with required query parameters', () => {
  let api: RequestValidator;
  beforeAll(async () => {
    const file = join(tmp, 'reports.json');
    const param = (name: string, where: string, required: boolean) => ({
      name,
      in: where,
      required,
      schema: { type: 'string' },
    });
    writeFileSync(
      file,
      JSON.stringify({
        openapi: '3.0.3',
        info: { title: 'Reports', version: '1' },
        paths: {
          '/exports/{name}.csv': {
            get: {
              operationId: 'downloadExport',
              parameters: [param('name', 'path', true), param('from', 'query', true), param('to', 'query', true)],
              responses: {},
            },
          },
          '/reports/{name}': {
            get: {
              operationId: 'getReport',
              parameters: [param('name', 'path', true), param('X-Trace', 'header', true)],
              responses: {},
            },
          },
          '/reports/latest': {
            get: { operationId: 'getLatestReport', parameters: [param('kind', 'query', true)], responses: {} },
          },
        },
      }),
    );
    api = new RequestValidator({ provider: 'reports', operations: await operationsOf('reports', file) });
  });

  it('requires the required query parameters, from `query` or the path', () => {
    expect(api.check({ method: 'GET', path: '/exports/q1.csv', query: { from: '2024-01-01' } })).toBe(
      'reports: GET /exports/q1.csv: GET /exports/{name}.csv (downloadExport) needs the query parameter "to": pass it in `query`.',
    );
    expect(api.check({ method: 'GET', path: '/exports/q1.csv' })).toContain(
      'needs the query parameters "from", "to": pass them in `query`.',
    );
    expect(
      api.check({ method: 'GET', path: '/exports/q1.csv?to=2024-03-31', query: { from: '2024-01-01' } }),
    ).toBeUndefined();
    expect(api.check({ method: 'GET', path: '/exports/q1.json', query: { from: '1', to: '2' } })).toContain(
      'matches no operation',
    );
  });

  it('lets a literal path fall back to a template whose parameters are all there', () => {
    // GET /reports/latest needs ?kind; without it, the request may still mean getReport("latest").
    expect(api.check({ method: 'GET', path: '/reports/latest' })).toBeUndefined();
    // Header parameters cannot be set by scripts, so they are never required here.
    expect(api.check({ method: 'GET', path: '/reports/q1' })).toBeUndefined();
  });
});

describe('requestValidators', () => {
  it('validates HTTP providers that want it, and says which ones it cannot check', async () => {
    const crm = await loadSpec('crm', CRM_SPEC);
    const emptyFile = join(tmp, 'empty.json');
    writeFileSync(emptyFile, JSON.stringify({ openapi: '3.0.0', info: { title: 'Empty', version: '1' }, paths: {} }));
    const empty = await loadSpec('empty', emptyFile);
    const retry = { maximumAttempts: 1, initialIntervalMs: 1, maximumIntervalMs: 1, backoffCoefficient: 1 };
    const http = {
      openapiTimeoutMs: 1000,
      baseUrl: 'http://127.0.0.1:1',
      idempotencyHeader: 'Idempotency-Key',
      timeoutMs: 1000,
      retry,
      durability: 'round' as const,
      validateRequests: true,
    };
    const warnings: string[] = [];
    const validators = requestValidators(
      {
        crm: { openapi: CRM_SPEC, ...http },
        unchecked: { openapi: CRM_SPEC, ...http, validateRequests: false },
        empty: { openapi: empty.source, ...http },
        tools: { mcp: { command: ['node', 'server.js'], env: [] }, timeoutMs: 1000, retry, durability: 'round' },
      },
      [crm, { ...crm, provider: 'unchecked' }, empty, toolsSpec('tools', [])],
      (message) => warnings.push(message),
    );
    expect(Object.keys(validators)).toEqual(['crm']);
    expect(warnings).toEqual([
      `The OpenAPI spec of provider "empty" (${empty.source}) has no operations, so requests to it are sent without checking them.`,
    ]);
  });
});

describe('RequestValidator on the Cloudflare spec', () => {
  let cloudflare: RequestValidator;
  let requests: Array<{ method: string; path: string; query: Record<string, string> }>;
  beforeAll(async () => {
    const operations = await operationsOf('cloudflare', CLOUDFLARE_SPEC);
    cloudflare = new RequestValidator({ provider: 'cloudflare', operations });
    // Every operation, called as a script would: parameters filled in, required query parameters given.
    requests = operations.map((op) => ({
      method: op.method,
      path: op.path.replace(/\{[^}]*\}/g, 'a1b2c3'),
      query: Object.fromEntries(
        ((op.parameters ?? []) as Array<{ name: string; in: string; required?: boolean }>)
          .filter((p) => p.in === 'query' && p.required)
          .map((p) => [p.name, 'x']),
      ),
    }));
  });

  it('accepts a call of each of the 1,533 operations (timed in bench/tokens.ts)', () => {
    expect(requests).toHaveLength(1533);
    expect(requests.map((r) => cloudflare.check(r)).filter((m) => m !== undefined)).toEqual([]);
  });

  it('suggests the operations a mistyped path meant', () => {
    const message = cloudflare.check({ method: 'GET', path: '/zone/023e105f4ecef8ad9ca31a8372d0c353/dns_record' })!;
    expect(message).toMatch(
      /^cloudflare: GET \/zone\/023e105f4ecef8ad9ca31a8372d0c353\/dns_record matches no operation of the provider's spec\. Closest: GET \/zones\/\{zone_id\}\/dns_records \(dns-records-for-a-zone-list-dns-records\)/,
    );
    const missing = requests.find((r) => Object.keys(r.query).length > 0)!;
    expect(cloudflare.check({ ...missing, query: {} })).toMatch(
      / needs the query parameters? .*: pass (it|them) in `query`\.$/,
    );
  });
});

describe('validation in a job, on a real worker', () => {
  let crm: CrmApi;
  let sheets: SheetsApi;
  let stack: InProcessStack;
  beforeAll(async () => {
    crm = await startCrmApi();
    sheets = await startSheetsApi({ sheets: { leads: 1 } });
    stack = await startInProcessStack(testConfig({ providers: demoProvidersConfig({ crm, sheets }) }));
  });
  afterAll(async () => {
    await stack?.close();
    await crm?.close();
    await sheets?.close();
  });

  it('fails a request no operation matches inside the script, as a catchable RequestError, without calling the API', async () => {
    const view = await stack.jobs.execute({
      code: `async () => {
        const refused = [];
        for (const request of [{ method: 'POST', path: '/lead', body: { name: 'Ada', email: 'ada@example.com' } }, { method: 'GET', path: '/leads/' + input.missing }]) {
          try {
            await crm.request(request);
          } catch (e) {
            refused.push({ name: e.name, message: e.message });
          }
        }
        const created = await crm.request({ method: 'POST', path: '/leads', body: { name: 'Ada', email: 'ada@example.com' } });
        return { refused, created: created.id };
      }`,
      input: {},
      waitSeconds: 60,
    });
    expect(view.status, JSON.stringify(view)).toBe('completed');
    expect(view.result).toEqual({
      refused: [
        {
          name: 'RequestError',
          message:
            "crm: POST /lead matches no operation of the provider's spec. Closest: POST /leads (createLead), GET /leads (listLeads), POST /leads/batch (createLeadsBatch). Look operations up with the search tool.",
        },
        {
          name: 'RequestError',
          message:
            'crm: GET /leads/undefined: GET /leads/{id} (getLead) needs the path parameter "id", but the path has "undefined" in its place.',
        },
      ],
      created: expect.stringMatching(/^lead_/),
    });
    expect(crm.stats().requests).toBe(1);
  });
});

describe('a provider whose spec failed to load, on a real worker', () => {
  let crm: CrmApi;
  let stack: InProcessStack;
  let brokenSpec: string;
  beforeAll(async () => {
    crm = await startCrmApi();
    brokenSpec = join(tmp, 'broken-crm.json');
    writeFileSync(brokenSpec, '{ "openapi": "3.0.0", ');
    const providers = demoProvidersConfig({ crm, sheets: { url: 'http://127.0.0.1:9' } });
    stack = await startInProcessStack(
      testConfig({ providers: { crm: providers.crm, broken: { ...providers.crm, openapi: brokenSpec } } }),
    );
  });
  afterAll(async () => {
    await stack?.close();
    await crm?.close();
  });

  it('starts the worker; calls to it fail with a RequestError naming the spec error, the others go through', async () => {
    const view = await stack.jobs.execute({
      code: `async () => {
        let refused;
        try { await broken.request({ method: 'GET', path: '/leads' }); } catch (e) { refused = { name: e.name, message: e.message }; }
        const list = await crm.request({ method: 'GET', path: '/leads' });
        return { refused, total: list.total };
      }`,
      waitSeconds: 60,
    });
    expect(view.status, JSON.stringify(view)).toBe('completed');
    const { refused } = view.result as { refused: { name: string; message: string } };
    expect(refused.name).toBe('RequestError');
    expect(refused.message).toContain(
      `broken: GET /leads was not sent: requests to broken are checked against its OpenAPI spec, which failed to load. Cannot load the OpenAPI spec of provider "broken" from ${brokenSpec}: the file is not valid JSON`,
    );
    expect(view.result).toMatchObject({ total: 0 });
    expect(crm.stats().requests).toBe(1);
  });
});
