import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadSpec, toolsSpec, type LoadedSpec } from '../../providers/spec.ts';
import { ScriptSyntaxError } from '../../sandbox/isolate.ts';
import { SearchError, SpecSearch } from '../../sandbox/search.ts';
import { ARTICLE_SEARCH, CLOUDFLARE_SPEC } from '../fixtures/cloudflare.ts';
import { NODE_REF, TREES_SPEC } from '../fixtures/trees-spec.ts';
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

async function demoSpecs(): Promise<LoadedSpec[]> {
  return [await loadSpec('crm', CRM_SPEC), await loadSpec('sheets', SHEETS_SPEC)];
}

describe('SpecSearch on the demo specs', () => {
  let specs: LoadedSpec[];
  let search: SpecSearch;
  beforeAll(async () => {
    specs = await demoSpecs();
    search = await SpecSearch.create(specs, { timeoutMs: 300 });
  });
  afterAll(() => search.dispose());

  it('exposes the providers and all their operations in one array', async () => {
    expect(
      await search.run(
        '() => Object.fromEntries(Object.entries(spec.providers).map(([name, p]) => [name, [p.title, p.version, p.operations, p.source]]))',
      ),
    ).toEqual({
      crm: ['Demo CRM API', '1.0.0', 6, CRM_SPEC],
      sheets: ['Demo Sheets API', '1.0.0', 4, SHEETS_SPEC],
    });
    expect(await search.run('async () => spec.operations.length')).toBe(10);
    expect(await search.run('() => Object.keys(spec)')).toEqual(['paths', 'operations', 'tools', 'providers']);
  });

  it('has the OpenAPI paths object, each operation naming its provider, merged across providers and per provider', async () => {
    expect(
      await search.run(`async () => {
        const results = [];
        for (const [path, methods] of Object.entries(spec.paths)) {
          for (const [method, op] of Object.entries(methods)) results.push(op.provider + ' ' + method.toUpperCase() + ' ' + path);
        }
        return results;
      }`),
    ).toEqual([
      'crm GET /leads',
      'crm POST /leads',
      'crm POST /leads/batch',
      'crm GET /leads/{id}',
      'crm DELETE /leads/{id}',
      'crm PATCH /leads/{id}',
      'sheets GET /sheets',
      'sheets GET /sheets/{id}',
      'sheets GET /sheets/{id}/csv',
      'sheets GET /sheets/{id}/rows',
    ]);
    expect(await search.run('() => Object.keys(spec.providers.sheets.paths)')).toEqual([
      '/sheets',
      '/sheets/{id}',
      '/sheets/{id}/csv',
      '/sheets/{id}/rows',
    ]);
    // The same operation object, however it is reached.
    expect(
      await search.run(
        "() => spec.paths['/leads'].post === spec.operations[1] && spec.providers.crm.paths['/leads'].post === spec.operations[1]",
      ),
    ).toBe(true);
  });

  it('names the keys there are when a search reads one that does not exist', async () => {
    expect((await failure(search.run('() => Object.entries(spec.components.schemas)'))).message).toBe(
      'The search threw TypeError at line 1, column 27: spec has no key "components"; it has paths, operations, tools, providers',
    );
    expect((await failure(search.run('() => spec.providers.stripe.paths'))).message).toMatch(
      /spec\.providers has no provider "stripe"; it has crm, sheets$/,
    );
    // What JavaScript itself asks of a value still answers undefined.
    expect(
      await search.run('async () => [spec.then, spec.toJSON, typeof spec[Symbol.iterator], "nope" in spec]'),
    ).toEqual([null, null, 'undefined', false]);
  });

  it('finds the /leads operations with their request body schemas, read and returned as if expanded', async () => {
    const found = (await search.run(`async () => spec.operations
      .filter((o) => o.path.startsWith('/leads') && o.requestBody)
      .map((o) => ({ op: o.method + ' ' + o.path, body: o.requestBody }))`)) as { op: string; body: any }[];
    expect(found.map((f) => f.op)).toEqual(['POST /leads', 'POST /leads/batch', 'PATCH /leads/{id}']);
    const create = found[0].body;
    expect(create.required).toBe(true);
    expect(create.contentType).toBe('application/json');
    expect(create.schema.required).toEqual(['name', 'email']);
    expect(create.schema.properties.email).toMatchObject({ type: 'string', format: 'email' });
    // A named schema is written out once per result; the batch's items are the same LeadInput.
    expect(found[1].body.schema.properties.leads.items).toEqual({ $ref: '#/components/schemas/LeadInput' });
    expect(
      await search.run("() => spec.paths['/leads/batch'].post.requestBody.schema.properties.leads.items.required"),
    ).toEqual(['name', 'email']);
  });

  it("writes TypeScript declarations of an operation's request and response", async () => {
    expect(await search.run("() => types(spec.paths['/leads'].get)")).toBe(`// GET /leads (listLeads): List leads
type Request = {
  query?: {
    limit?: number; // Maximum number of leads to return.
    offset?: number; // Number of leads to skip.
    email?: string; // Only return leads with this email address (case-insensitive exact match).
  };
};
type Response = LeadList; // 200 A page of leads.
/** (#/components/schemas/LeadList) */
type LeadList = {
  leads: Lead[];
  total: number; // Number of leads matching the filter, across all pages.
};
/** A stored lead. (#/components/schemas/Lead) */
type Lead = {
  id: string; // Lead id.
  name: string; // Full name.
  email: string; // Email address.
  phone?: string; // Phone number.
  company?: string; // Company the lead works for.
  source?: string; // Where the lead came from.
  createdAt: string; // When the lead was created.
};`);
    const post = (await search.run("() => types(spec.paths['/leads'].post, { depth: 0 })")) as string;
    expect(post).toContain('type Request = {\n  body: LeadInput;\n};\ntype Response = Lead; // 201 The created lead.');
    expect(post).toContain('// Not expanded (depth or size limit): LeadInput = #/components/schemas/LeadInput, Lead =');
    expect(await search.run("() => types(spec.providers.crm.schemas['#/components/schemas/LeadInput'])")).toMatch(
      /^\/\*\* Fields of a lead to create\. \*\/\ntype Schema = \{\n {2}name: string; \/\/ Full name\./,
    );
    expect((await failure(search.run('() => types("createLead")'))).message).toContain(
      'types() takes an operation (from spec.operations or spec.paths), a tool (spec.tools) or a schema',
    );
  });

  it('accepts TypeScript, with errors at the line and column the author wrote', async () => {
    expect(
      await search.run(`interface Found { op: string; params: number }
async (): Promise<Found[]> => {
  const ops = spec.operations as Array<{ method: string; path: string; parameters?: unknown[] }>;
  const pick = <T,>(items: T[], n: number): T[] => items.slice(0, n);
  return pick(ops, 2).map((o) => ({ op: \`\${o.method} \${o.path}\`, params: o.parameters?.length ?? 0 }) satisfies Found);
}`),
    ).toEqual([
      { op: 'GET /leads', params: 3 },
      { op: 'POST /leads', params: 1 },
    ]);
    const thrown = await failure(
      search.run('async (): Promise<never> => {\n  const n: number = 1;\n  throw new Error(`n is ${n}`);\n}'),
    );
    expect(thrown).toMatchObject({ line: 3, column: 9, message: 'The search threw Error at line 3, column 9: n is 1' });
    const invalid = await failure(search.run('async () => {\n  const x: number = ;\n}'));
    expect(invalid).toBeInstanceOf(ScriptSyntaxError);
    expect(invalid).toMatchObject({ line: 2, column: 21 });
    expect(invalid.message).toContain('TypeScript error at line 2, column 21: Expression expected');
    const enumeration = await failure(search.run('async () => {\n  enum Color { Red }\n  return Color.Red;\n}'));
    expect(enumeration.message).toMatch(
      /^TypeScript error at line 2, column 3: TypeScript enum is not supported .*use a union of string literals/,
    );
  });

  it('says a script is an async arrow function when it is written as statements', async () => {
    const error = await failure(search.run('return spec.operations.length'));
    expect(error).toBeInstanceOf(ScriptSyntaxError);
    expect(error.message).toBe(
      "SyntaxError at line 1, column 1: Unexpected token 'return'\n  1 | return spec.operations.length\n    | ^\nA script is an async arrow function, e.g. `async () => 1 + 1`: wrap these statements in `async () => { ... }`.",
    );
    expect((await failure(search.run('const n: number = 2;\nreturn n'))).message).toContain(
      'A script is an async arrow function',
    );
    expect((await failure(search.run('async () => {\n  const x = ;\n}'))).message).not.toContain(
      'async arrow function',
    );
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
    expect(typo.message).toBe(
      'The search threw TypeError at line 1, column 12: spec has no key "operation"; it has paths, operations, tools, providers',
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
      Array.from({ length: 12 }, (_, i) =>
        search.run(`async () => { await null; return spec.operations[${i % 10}].path; }`),
      ),
    );
    const paths = [
      '/leads',
      '/leads',
      '/leads/batch',
      '/leads/{id}',
      '/leads/{id}',
      '/leads/{id}',
      '/sheets',
      '/sheets/{id}',
      '/sheets/{id}/csv',
      '/sheets/{id}/rows',
    ];
    expect(results).toEqual(Array.from({ length: 12 }, (_, i) => paths[i % 10]));
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
    search = await SpecSearch.create([await loadSpec('cloudflare', CLOUDFLARE_SPEC)]);
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
    expect(await search.heapBytes()).toBeGreaterThan(10_000_000);
  });

  it("runs the Cloudflare Code Mode article's search verbatim", async () => {
    const found = (await search.run(ARTICLE_SEARCH)) as Array<{ method: string; path: string; summary: string }>;
    expect(found.length).toBeGreaterThan(10);
    expect(found).toContainEqual({
      method: 'GET',
      path: '/zones/{zone_id}/rulesets/phases/{ruleset_phase}/entrypoint',
      summary: expect.any(String),
    });
    expect(found.every((f) => f.path.includes('/zones/') && /firewall\/waf|rulesets/.test(f.path))).toBe(true);
  });
});

describe('SpecSearch over a graph of schemas', () => {
  it('reads through cycles, and returns each named schema once, nested at most two levels, as $ref after that', async () => {
    const node = NODE_REF;
    const file = writeSpec('circular.json', TREES_SPEC);
    const search = await SpecSearch.create([await loadSpec('trees', file)]);
    try {
      expect(
        await search.run(
          '() => spec.operations[0].requestBody.schema.properties.children.items.properties.children.items.properties.name',
        ),
      ).toEqual({ type: 'string' });
      const body = (await search.run("() => spec.paths['/nodes'].post.requestBody")) as any;
      expect(body.schema.properties.name).toEqual({ type: 'string' });
      expect(body.schema.properties.children.items).toEqual(node);
      // Returned twice in one result: written out the first time, referred to the second.
      expect(
        await search.run("() => [spec.operations[0].responses['201'].schema, spec.operations[0].requestBody.schema]"),
      ).toEqual([
        {
          type: 'object',
          properties: {
            name: { type: 'string' },
            children: { type: 'array', items: node },
            parent: { description: 'Its parent.', allOf: [node] },
          },
        },
        node,
      ]);
      // JSON.stringify inside a search writes the graph the same way (a full-text search works).
      expect(
        await search.run(
          "() => JSON.stringify(spec.operations[0]).length < 1000 && JSON.stringify(spec.operations[0], ['method'], 1)",
        ),
      ).toBe('{\n "method": "POST"\n}');
      expect(
        await search.run(
          "() => spec.providers.trees.schemas['#/components/schemas/Node'].properties.children.items === spec.providers.trees.schemas['#/components/schemas/Node']",
        ),
      ).toBe(true);
    } finally {
      search.dispose();
    }
  });

  it('shows a failed spec as spec.providers.NAME.error and its warnings, and searches the others', async () => {
    const broken = writeSpec('broken.json', { swagger: '1.2', apis: [] });
    const dangling = writeSpec('dangling.json', {
      openapi: '3.0.0',
      info: { title: 'Dangling', version: '1' },
      paths: { '/a': { get: { responses: { '200': { $ref: '#/components/responses/Gone' } } } } },
    });
    const specs = [await loadSpec('broken', broken), await loadSpec('dangling', dangling), ...(await demoSpecs())];
    const search = await SpecSearch.create(specs);
    try {
      expect(await search.run('() => spec.providers.broken')).toEqual({
        source: broken,
        error: specs[0].error,
        operations: 0,
        paths: {},
        schemas: {},
      });
      expect(specs[0].error).toMatch(/^Cannot load the OpenAPI spec of provider "broken" from .*broken\.json: /);
      expect(await search.run('() => [spec.providers.dangling.warnings, spec.providers.dangling.operations]')).toEqual([
        [
          '#/paths/~1a/get/responses/200: $ref #/components/responses/Gone points nowhere: the spec has nothing at that JSON pointer',
        ],
        1,
      ]);
      expect(await search.run('() => spec.operations.length')).toBe(11);
    } finally {
      search.dispose();
    }
  });

  it('fails the largest spec alone when they do not fit in the sandbox together', async () => {
    const specs = [await loadSpec('cloudflare', CLOUDFLARE_SPEC), ...(await demoSpecs())];
    const search = await SpecSearch.create(specs, { memoryMb: 8 });
    try {
      expect(search.loaded[0].error).toMatch(
        /^The OpenAPI spec of provider "cloudflare" \(.*, 4 MB reduced\) does not fit in the search sandbox's memory limit of 8 MiB beside the others$/,
      );
      expect(await search.run('() => [spec.providers.cloudflare.error, spec.operations.length]')).toEqual([
        search.loaded[0].error,
        10,
      ]);
    } finally {
      search.dispose();
    }
  });

  it("writes an upstream MCP tool's input and output as TypeScript", async () => {
    const weather = toolsSpec('weather', [
      {
        name: 'forecast',
        description: 'The forecast for a city.',
        inputSchema: {
          type: 'object',
          properties: { city: { type: 'string', description: 'City name.' }, days: { type: 'integer' } },
          required: ['city'],
        },
        outputSchema: { type: 'object', properties: { temperatures: { type: 'array', items: { type: 'number' } } } },
      },
    ]);
    const search = await SpecSearch.create([weather]);
    try {
      expect(await search.run('() => types(spec.tools[0])')).toBe(`// forecast: The forecast for a city.
type Input = {
  city: string; // City name.
  days?: number;
};
type Output = {
  temperatures?: number[];
};`);
    } finally {
      search.dispose();
    }
  });
});
