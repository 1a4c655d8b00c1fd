/**
 * Real public API specs, from Stripe's to Microsoft Graph beta's (47 MB, 22,000 operations): each
 * loads with every operation, is searchable in bounded memory, and answers within the token budget.
 * The large ones are fetched from npm on first use (test/fixtures/real-specs.ts); a failed fetch
 * fails these tests.
 */
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { load as parseYaml } from 'js-yaml';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { LocalBlobStore } from '../../blobs/local-store.ts';
import { loadSpec, type LoadedSpec } from '../../providers/spec.ts';
import { SpecSearch } from '../../sandbox/search.ts';
import { countTokens, jsonText, ResultBudget } from '../../server/budget.ts';
import { CLOUDFLARE_SPEC } from '../fixtures/cloudflare.ts';
import { realSpec, REAL_SPECS, type RealSpecName, temporalApiSpec } from '../fixtures/real-specs.ts';

const HTTP_METHODS = ['get', 'put', 'post', 'delete', 'options', 'head', 'patch', 'trace'];

/** Operations in the document, counted without the loader: path × method entries that are objects. */
function operationsIn(file: string): number {
  const text = readFileSync(file, 'utf8');
  const doc = (file.endsWith('.yaml') ? parseYaml(text) : JSON.parse(text)) as {
    paths: Record<string, Record<string, unknown>>;
  };
  return Object.values(doc.paths).reduce(
    (n, item) => n + HTTP_METHODS.filter((m) => typeof item[m] === 'object' && item[m] !== null).length,
    0,
  );
}

let tmp: string;
beforeAll(() => {
  tmp = mkdtempSync(join(tmpdir(), 'dcm-real-specs-'));
});
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

describe('real specs load with every operation', () => {
  const files: Array<[string, () => string]> = [
    ...Object.keys(REAL_SPECS).map((name) => [name, () => realSpec(name as RealSpecName)] as [string, () => string]),
    ['cloudflare', () => CLOUDFLARE_SPEC],
    ['temporalYaml', () => temporalApiSpec('openapi3yaml')],
  ];
  for (const [name, file] of files) {
    it(name, async () => {
      const spec = await loadSpec(name, file());
      expect(spec.error).toBeUndefined();
      expect(spec.warnings).toEqual([]);
      expect((JSON.parse(spec.json!) as { operations: unknown[] }).operations).toHaveLength(operationsIn(file()));
    });
  }

  it("the Temporal API's Swagger spec, whose $refs to two missing definitions are reported where they are", async () => {
    const file = temporalApiSpec('swagger2');
    const spec = await loadSpec('temporal', file);
    expect(spec.error).toBeUndefined();
    expect(spec.warnings).toHaveLength(10);
    expect(spec.warnings).toContain(
      '#/definitions/WorkflowServiceRespondActivityTaskFailedBody/properties/failure: $ref #/definitions/apiFailureV1Failure points nowhere: the spec has nothing at that JSON pointer',
    );
    expect(
      spec.warnings.every((w) => /#\/definitions\/(apiFailureV1Failure|apiCommonV1Link) points nowhere/.test(w)),
    ).toBe(true);
    expect((JSON.parse(spec.json!) as { operations: unknown[] }).operations).toHaveLength(operationsIn(file));
  });
});

describe('Stripe in the search sandbox', () => {
  let stripe: LoadedSpec;
  let search: SpecSearch;
  beforeAll(async () => {
    stripe = await loadSpec('stripe', realSpec('stripe'));
    search = await SpecSearch.create([stripe]);
  });
  afterAll(() => search?.dispose());

  it('is given each schema once: the sandbox gets less JSON than the spec has', () => {
    expect(stripe.json!.length).toBeLessThan(readFileSync(realSpec('stripe')).length);
  });

  it("returns one operation's full schema within the answer budget", async () => {
    const op = (await search.run("() => spec.paths['/v1/customers/{customer}'].get")) as {
      responses: Record<string, { schema: { properties: Record<string, unknown> } }>;
    };
    const text = jsonText(op);
    // Named schemas nest two levels deep in a result, then are referred to: no expansion blow-up.
    expect(text.length).toBeLessThan(1_000_000);
    expect(op.responses['200'].schema).toMatchObject({
      anyOf: [{ properties: { id: { type: 'string' } } }, { properties: { deleted: expect.anything() } }],
    });
    const budget = new ResultBudget(4000, new LocalBlobStore(join(tmp, 'blobs')));
    const answer = budget.search(op);
    expect(countTokens(jsonText(answer))).toBeLessThanOrEqual(4000);
  });

  it('writes the TypeScript of an operation within its size bound', async () => {
    const types = (await search.run("() => types(spec.paths['/v1/customers'].post)")) as string;
    expect(types).toMatch(/^\/\/ POST \/v1\/customers \(PostCustomers\)\ntype Request = \{\n {2}body\?: \{\n/);
    expect(types).toContain('type Response = customer; // 200');
    expect(types).toMatch(
      /\n\/\/ Not expanded \(depth or size limit\): .*subscription = #\/components\/schemas\/subscription/,
    );
    expect(types.length).toBeLessThan(12_000);
  });

  it('runs a TypeScript search', async () => {
    expect(
      await search.run(`async (): Promise<string[]> => {
        type Op = { method: string; path: string; tags?: string[] };
        return (spec.operations as Op[]).filter((o) => o.path === '/v1/refunds').map((o) => o.method);
      }`),
    ).toEqual(['GET', 'POST']);
  });

  it('finds text anywhere in an operation with JSON.stringify, boundedly', async () => {
    expect(
      await search.run(`async () => spec.operations.filter((o) => JSON.stringify(o).includes('"email"')).length`),
    ).toBeGreaterThan(50);
  });
});

describe('Microsoft Graph beta in the search sandbox', () => {
  it('loads its 22,000 operations, cached the second time, and searches them', async () => {
    const cache = new LocalBlobStore(join(tmp, 'graph-blobs'));
    const file = realSpec('graphBeta');
    const cold = await loadSpec('graph', file, { cache });
    expect(cold.error).toBeUndefined();
    const cached = await loadSpec('graph', file, { cache });
    expect(cached.cached).toBe(true);
    const search = await SpecSearch.create([cached]);
    try {
      expect(await search.run('() => spec.operations.length')).toBe(operationsIn(file));
      expect(await search.run("() => Object.keys(spec.paths['/users/{user-id}']).sort()")).toEqual([
        'delete',
        'get',
        'patch',
      ]);
      expect(await search.run("() => types(spec.paths['/users/{user-id}'].get, { depth: 0 }).split('\\n')[0]")).toMatch(
        /^\/\/ GET \/users\/\{user-id\}/,
      );
    } finally {
      search.dispose();
    }
  });
});
