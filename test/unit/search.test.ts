import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadProviderSpec, loadProviderSpecs } from '../../providers/spec.ts';
import type { Operation, ProviderSpec } from '../../providers/spec.ts';
import { ScriptSyntaxError } from '../../sandbox/isolate.ts';
import { SearchError, SpecSearch } from '../../sandbox/search.ts';
import { CLOUDFLARE_SPEC } from '../fixtures/cloudflare.ts';
import { CRM_SPEC_PATH as CRM_SPEC } from '../../demo-apis/crm.ts';
import { SHEETS_SPEC_PATH as SHEETS_SPEC } from '../../demo-apis/sheets.ts';

let tmp: string;
beforeAll(() => {
  tmp = mkdtempSync(join(tmpdir(), 'dcm-search-'));
});
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

/** The error a search fails with; fails the test if it succeeds. */
function failure(search: Promise<unknown>): Promise<Error & { line?: number; column?: number }> {
  return search.then(
    (value) => {
      throw new Error(`expected the search to fail, it returned ${JSON.stringify(value)}`);
    },
    (e: Error) => e,
  );
}

function writeSpec(name: string, doc: unknown): string {
  const file = join(tmp, name);
  writeFileSync(file, JSON.stringify(doc));
  return file;
}

describe('loadProviderSpec', () => {
  it('loads the demo specs, dereferenced, with path-level parameters merged', async () => {
    const [crm, sheets] = await loadProviderSpecs({ crm: { openapi: CRM_SPEC }, sheets: { openapi: SHEETS_SPEC } });
    expect(crm.provider).toBe('crm');
    expect(crm.title).toBe('Demo CRM API');
    expect(crm.operations.map((o) => `${o.method} ${o.path}`)).toEqual([
      'GET /leads',
      'POST /leads',
      'POST /leads/batch',
      'GET /leads/{id}',
      'DELETE /leads/{id}',
      'PATCH /leads/{id}',
    ]);
    expect(sheets.operations).toHaveLength(4);
    const getSheet = sheets.operations.find((o) => o.operationId === 'getSheet')!;
    expect(getSheet.parameters).toEqual([expect.objectContaining({ name: 'id', in: 'path', required: true })]);
    expect(JSON.stringify([crm, sheets])).not.toContain('$ref');
  });

  it('names the provider and the file when the spec cannot be loaded', async () => {
    const missing = join(tmp, 'missing.json');
    await expect(loadProviderSpec('crm', missing)).rejects.toThrow(
      `Cannot load the OpenAPI spec of provider "crm" from ${missing}: `,
    );
    const notOpenApi = writeSpec('not-openapi.json', { name: 'package' });
    await expect(loadProviderSpec('pkg', notOpenApi)).rejects.toThrow(
      /provider "pkg" from .*not-openapi\.json: not an OpenAPI 3\.x or Swagger 2\.0 document/,
    );
  });

  it('keeps circular $refs as $refs, so the spec stays JSON-serializable and searchable', async () => {
    const file = writeSpec('circular.json', {
      openapi: '3.0.3',
      info: { title: 'Trees', version: '1' },
      paths: {
        '/nodes': {
          post: {
            operationId: 'createNode',
            requestBody: {
              required: true,
              content: { 'application/json': { schema: { $ref: '#/components/schemas/Node' } } },
            },
            responses: {
              '201': {
                description: 'Created',
                content: { 'application/json': { schema: { $ref: '#/components/schemas/Node' } } },
              },
            },
          },
        },
      },
      components: {
        schemas: {
          Node: {
            type: 'object',
            properties: {
              name: { type: 'string', 'x-internal': true },
              children: { type: 'array', items: { $ref: '#/components/schemas/Node' } },
            },
          },
        },
      },
    });
    const spec = await loadProviderSpec('trees', file);
    expect(spec.operations).toHaveLength(1);
    const search = await SpecSearch.create([spec]);
    try {
      const body = (await search.run(
        `async () => spec.operations.find((o) => o.operationId === 'createNode').requestBody`,
      )) as any;
      expect(body.required).toBe(true);
      expect(body.schema.properties.name).toEqual({ type: 'string' });
      expect(body.schema.properties.children.items).toEqual({ $ref: '#/components/schemas/Node' });
    } finally {
      search.dispose();
    }
  });

  it('converts Swagger 2.0: body parameter to requestBody, inline parameter types to schemas', async () => {
    const file = writeSpec('swagger.json', {
      swagger: '2.0',
      info: { title: 'Pets', version: '2' },
      basePath: '/v2',
      paths: {
        '/pets': {
          parameters: [{ name: 'tenant', in: 'header', type: 'string', required: true }],
          post: {
            operationId: 'addPet',
            parameters: [
              { name: 'dryRun', in: 'query', type: 'boolean', description: 'Validate only.' },
              { name: 'pet', in: 'body', required: true, schema: { $ref: '#/definitions/Pet' } },
            ],
            responses: { '200': { description: 'The pet.', schema: { $ref: '#/definitions/Pet' } } },
          },
        },
      },
      definitions: {
        Pet: {
          type: 'object',
          required: ['name'],
          properties: { name: { type: 'string' }, tag: { type: 'string', example: 'dog' } },
        },
      },
    });
    const spec = await loadProviderSpec('pets', file);
    const pet = {
      type: 'object',
      required: ['name'],
      properties: { name: { type: 'string' }, tag: { type: 'string' } },
    };
    expect(spec.operations).toEqual<Operation[]>([
      {
        provider: 'pets',
        method: 'POST',
        path: '/pets',
        operationId: 'addPet',
        parameters: [
          { name: 'tenant', in: 'header', required: true, schema: { type: 'string' } },
          { name: 'dryRun', in: 'query', required: false, description: 'Validate only.', schema: { type: 'boolean' } },
        ],
        requestBody: { required: true, contentType: 'application/json', schema: pet },
        responses: { '200': { description: 'The pet.', schema: pet } },
      },
    ]);
    const twoBodies = writeSpec('swagger-bad.json', {
      swagger: '2.0',
      info: { title: 'Bad', version: '1' },
      paths: {
        '/x': {
          post: {
            parameters: [
              { name: 'a', in: 'body', schema: {} },
              { name: 'b', in: 'body', schema: {} },
            ],
            responses: {},
          },
        },
      },
    });
    await expect(loadProviderSpec('bad', twoBodies)).rejects.toThrow(
      'Swagger 2.0 spec at paths["/x"].post: more than one "in: body" parameter',
    );
  });
});

describe('SpecSearch on the demo specs', () => {
  let specs: ProviderSpec[];
  let search: SpecSearch;
  beforeAll(async () => {
    specs = await loadProviderSpecs({ crm: { openapi: CRM_SPEC }, sheets: { openapi: SHEETS_SPEC } });
    search = await SpecSearch.create(specs, { timeoutMs: 300 });
  });
  afterAll(() => search.dispose());

  it('exposes the providers and all their operations in one array', async () => {
    expect(await search.run('() => spec.providers')).toEqual({
      crm: { title: 'Demo CRM API', description: specs[0].description, version: '1.0.0', operations: 6 },
      sheets: { title: 'Demo Sheets API', description: specs[1].description, version: '1.0.0', operations: 4 },
    });
    expect(await search.run('async () => spec.operations.length')).toBe(10);
  });

  it('finds the /leads operations with their request body schemas dereferenced', async () => {
    const found = (await search.run(`async () => spec.operations
      .filter((o) => o.path.startsWith('/leads') && o.requestBody)
      .map((o) => ({ op: o.method + ' ' + o.path, body: o.requestBody }))`)) as { op: string; body: any }[];
    expect(found.map((f) => f.op)).toEqual(['POST /leads', 'POST /leads/batch', 'PATCH /leads/{id}']);
    const create = found[0].body;
    expect(create.required).toBe(true);
    expect(create.contentType).toBe('application/json');
    expect(create.schema.required).toEqual(['name', 'email']);
    expect(create.schema.properties.email).toMatchObject({ type: 'string', format: 'email' });
    expect(JSON.stringify(found)).not.toContain('$ref');
  });

  it('reports syntax errors with line and column', async () => {
    const error = await failure(search.run('async () => {\n  const x = ;\n}'));
    expect(error).toBeInstanceOf(ScriptSyntaxError);
    expect(error).toMatchObject({ line: 2, column: 13 });
    expect(error.message).toContain('SyntaxError at line 2, column 13');
  });

  it("reports errors thrown by the search with the user's message and line", async () => {
    const error = await failure(search.run('async () => {\n  await null;\n  throw new RangeError("no such tag");\n}'));
    expect(error).toBeInstanceOf(SearchError);
    expect(error.message).toBe('The search threw RangeError at line 3, column 9: no such tag');
    expect(error.line).toBe(3);
    const typo = await failure(search.run('() => spec.operation.filter((o) => o)'));
    expect(typo.message).toMatch(
      /^The search threw TypeError at line 1, column \d+: Cannot read properties of undefined \(reading 'filter'\)/,
    );
    await expect(search.run('() => { throw "plain string" }')).rejects.toThrow(
      'The search threw a non-Error value: plain string',
    );
  });

  it('refuses results that are not JSON-serializable, and code that is not a function', async () => {
    await expect(search.run('() => ({ op: spec.operations[0], pick() {} })')).rejects.toThrow(
      'the search result is not JSON-serializable: found a function at key "pick"',
    );
    await expect(search.run('() => 10n')).rejects.toThrow(
      'the search result is not JSON-serializable: found a bigint at the top level',
    );
    await expect(search.run('spec.operations.length')).rejects.toThrow('The search code must be a function expression');
  });

  it('cannot change the spec, the globals or the builtins for the next search', async () => {
    await search.run(`() => {
      spec.operations[0].path = '/hacked';
      spec.providers.crm.operations = 0;
      globalThis.leak = 1;
      Array.prototype.leak = 1;
      Object.prototype.leak = 1;
      JSON.stringify = () => '"hacked"';
    }`);
    await expect(search.run(`() => { 'use strict'; spec.operations.pop(); }`)).rejects.toThrow(/TypeError/);
    expect(
      await search.run(
        '() => [spec.operations[0].path, spec.providers.crm.operations, spec.operations.length, typeof leak, typeof [].leak, typeof ({}).leak]',
      ),
    ).toEqual(['/leads', 6, 10, 'undefined', 'undefined', 'undefined']);
    expect(await search.run('() => ({ a: 1 })')).toEqual({ a: 1 });
    // Frozen builtins still let instances define their own name, toString and the like.
    expect(
      await search.run(`() => {
      'use strict';
      class NotFound extends Error { constructor(m) { super(m); this.name = 'NotFound'; } }
      const o = { toString: null };
      o.toString = () => 'custom';
      return [new NotFound('x').name, String(o), [...spec.operations].sort((a, b) => a.path < b.path ? -1 : 1)[0].path];
    }`),
    ).toEqual(['NotFound', 'custom', '/leads']);
  });

  it('stops an endless loop at the time limit and stays usable', async () => {
    const error = await failure(search.run('() => { while (true) {} }'));
    expect(error).toBeInstanceOf(SearchError);
    expect(error.name).toBe('TimeLimitError');
    await expect(search.run('async () => { await null; for (;;) {} }')).rejects.toMatchObject({
      name: 'TimeLimitError',
    });
    expect(await search.run('() => spec.operations.length')).toBe(10);
  });

  it('refuses a promise that can never settle', async () => {
    await expect(search.run('() => new Promise(() => {})')).rejects.toThrow('returned a promise that never settled');
    expect(await search.run('async () => (await Promise.all([1, Promise.resolve(2)])).length')).toBe(2);
  });

  it('runs concurrent searches one after another, each with its own result', async () => {
    const results = await Promise.all(
      Array.from({ length: 10 }, (_, i) =>
        search.run(`async () => { await null; return spec.operations[${i % 9}].path; }`),
      ),
    );
    expect(results).toEqual(Array.from({ length: 10 }, (_, i) => specs.flatMap((s) => s.operations)[i % 9].path));
  });

  it('recreates the isolate after a search exceeds the memory limit', async () => {
    const small = await SpecSearch.create(specs, { memoryMb: 64, timeoutMs: 10_000 });
    try {
      const error = await failure(
        small.run('() => { const keep = []; for (;;) keep.push(new Array(100000).fill(keep.length)); }'),
      );
      expect(error).toMatchObject({ name: 'MemoryLimitError' });
      expect(await small.run('() => spec.operations.length')).toBe(10);
    } finally {
      small.dispose();
    }
    await expect(small.run('() => 1')).rejects.toThrow('This SpecSearch was disposed');
  });
});

describe('SpecSearch on the Cloudflare spec', () => {
  let search: SpecSearch;
  beforeAll(async () => {
    expect(existsSync(CLOUDFLARE_SPEC), `the Cloudflare spec is expected at ${CLOUDFLARE_SPEC}`).toBe(true);
    const cloudflare = await loadProviderSpec('cloudflare', CLOUDFLARE_SPEC);
    search = await SpecSearch.create([cloudflare]);
  });
  afterAll(() => search?.dispose());

  it('holds all 1,533 operations and finds zone operations', async () => {
    expect(await search.run('() => spec.providers.cloudflare.operations')).toBe(1533);
    expect(await search.run('() => spec.operations.length')).toBe(1533);
    const zones = (await search.run(`async () => spec.operations
      .filter((o) => o.method === 'POST' && o.path === '/zones')
      .map((o) => ({ id: o.operationId, body: o.requestBody }))`)) as { id: string; body: any }[];
    expect(zones).toHaveLength(1);
    expect(zones[0].body.schema.properties.name).toMatchObject({ type: 'string' });
    expect(JSON.stringify(zones)).not.toContain('$ref');
    expect(await search.heapBytes()).toBeGreaterThan(10_000_000);
  });
});
