/**
 * Loading specs: the reduced record (each shared schema once, by JSON pointer), Swagger 2.0, YAML,
 * broken specs failing their provider alone, the cache shared through the blob store, and spec URLs
 * that are down or slow.
 */
import { createHash } from 'node:crypto';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { LocalBlobStore } from '../../blobs/local-store.ts';
import { CRM_SPEC_PATH as CRM_SPEC } from '../../demo-apis/crm.ts';
import { SHEETS_SPEC_PATH as SHEETS_SPEC } from '../../demo-apis/sheets.ts';
import { readyProviders } from '../../providers/ready.ts';
import { loadSpec, specRecord, type LoadedSpec, type Operation, type SpecRecord } from '../../providers/spec.ts';
import { RequestValidator, requestValidators } from '../../providers/validate.ts';
import { NODE_REF, TREES_SPEC } from '../fixtures/trees-spec.ts';

let tmp: string;
beforeAll(() => {
  tmp = mkdtempSync(join(tmpdir(), 'dcm-specs-'));
});
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

function writeSpec(name: string, doc: unknown): string {
  const file = join(tmp, name);
  writeFileSync(file, typeof doc === 'string' ? doc : JSON.stringify(doc));
  return file;
}

function record(spec: LoadedSpec): SpecRecord {
  expect(spec.error).toBeUndefined();
  return specRecord(spec)!;
}

const http = { baseUrl: 'https://api.example.com', validateRequests: true } as const;

describe('loadSpec', () => {
  it('loads the demo specs: operations with path-level parameters merged, shared schemas once by pointer', async () => {
    const crm = record(await loadSpec('crm', CRM_SPEC));
    expect(crm.title).toBe('Demo CRM API');
    expect(crm.operations.map((o) => `${o.method} ${o.path}`)).toEqual([
      'GET /leads',
      'POST /leads',
      'POST /leads/batch',
      'GET /leads/{id}',
      'DELETE /leads/{id}',
      'PATCH /leads/{id}',
    ]);
    const getLead = crm.operations.find((o) => o.operationId === 'getLead')!;
    expect(getLead.parameters).toEqual([expect.objectContaining({ name: 'id', in: 'path', required: true })]);
    expect(getLead.responses!['200'].schema).toEqual({ $ref: '#/components/schemas/Lead' });
    expect(crm.schemas['#/components/schemas/Lead']).toMatchObject({
      type: 'object',
      properties: { email: { type: 'string', format: 'email' } },
    });
    const sheets = record(await loadSpec('sheets', SHEETS_SPEC));
    expect(sheets.operations).toHaveLength(4);
  });

  it('keeps cycles and shared schemas as $refs, so the record is no larger than the spec', async () => {
    const node = NODE_REF;
    const file = writeSpec('circular.json', TREES_SPEC);
    const trees = record(await loadSpec('trees', file));
    expect(trees.operations[0].requestBody).toEqual({ required: true, contentType: 'application/json', schema: node });
    expect(trees.schemas).toEqual({
      '#/components/schemas/Node': {
        type: 'object',
        properties: {
          name: { type: 'string' },
          children: { type: 'array', items: node },
          // OpenAPI 3.1: a $ref with siblings keeps them beside it.
          parent: { description: 'Its parent.', allOf: [node] },
        },
      },
    });
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
        '/pets/{id}/photo': {
          post: {
            consumes: ['multipart/form-data'],
            parameters: [
              { name: 'id', in: 'path', type: 'string', required: true },
              { name: 'file', in: 'formData', type: 'file', required: true },
              { name: 'caption', in: 'formData', type: 'string', description: 'Shown below it.' },
            ],
            responses: { '204': { description: 'Stored.' } },
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
    const pets = record(await loadSpec('pets', file));
    expect(pets.operations).toEqual<Operation[]>([
      {
        method: 'POST',
        path: '/pets',
        operationId: 'addPet',
        parameters: [
          { name: 'tenant', in: 'header', required: true, schema: { type: 'string' } },
          { name: 'dryRun', in: 'query', required: false, description: 'Validate only.', schema: { type: 'boolean' } },
        ],
        requestBody: { required: true, contentType: 'application/json', schema: { $ref: '#/definitions/Pet' } },
        responses: { '200': { description: 'The pet.', schema: { $ref: '#/definitions/Pet' } } },
      },
      {
        method: 'POST',
        path: '/pets/{id}/photo',
        parameters: [{ name: 'id', in: 'path', required: true, schema: { type: 'string' } }],
        requestBody: {
          required: true,
          contentType: 'multipart/form-data',
          schema: {
            type: 'object',
            properties: { file: { type: 'file' }, caption: { type: 'string', description: 'Shown below it.' } },
            required: ['file'],
          },
        },
        responses: { '204': { description: 'Stored.' } },
      },
    ]);
    expect(pets.schemas['#/definitions/Pet']).toEqual({
      type: 'object',
      required: ['name'],
      properties: { name: { type: 'string' }, tag: { type: 'string' } },
    });
  });

  it('reads YAML', async () => {
    const file = writeSpec(
      'spec.yaml',
      `openapi: 3.0.0
info: { title: Yaml, version: '1' }
paths:
  /ping:
    get:
      operationId: ping
      responses:
        '200':
          description: pong
          content:
            application/json:
              schema: { $ref: '#/components/schemas/Pong' }
components:
  schemas:
    Pong: { type: object, properties: { at: { type: string, format: date-time } } }
`,
    );
    const yaml = record(await loadSpec('yaml', file));
    expect(yaml.operations.map((o) => o.operationId)).toEqual(['ping']);
    expect(yaml.schemas['#/components/schemas/Pong']).toEqual({
      type: 'object',
      properties: { at: { type: 'string', format: 'date-time' } },
    });
  });

  it('bundles $refs to other files before reducing', async () => {
    writeSpec('common.json', { Error: { type: 'object', properties: { message: { type: 'string' } } } });
    const file = writeSpec('multi.json', {
      openapi: '3.0.0',
      info: { title: 'Multi', version: '1' },
      paths: {
        '/x': {
          get: {
            responses: {
              default: {
                description: 'An error.',
                content: { 'application/json': { schema: { $ref: './common.json#/Error' } } },
              },
            },
          },
        },
      },
    });
    const multi = record(await loadSpec('multi', file));
    // Met once, the other file's schema is inlined where it was referred to.
    expect(multi.operations[0].responses!.default.schema).toEqual({
      type: 'object',
      properties: { message: { type: 'string' } },
    });
  });

  it('keeps a $ref that points nowhere or at a non-object as unresolved, with a warning naming the pointer', async () => {
    const file = writeSpec('dangling.json', {
      openapi: '3.0.0',
      info: { title: 'Dangling', version: '1' },
      paths: {
        '/a': {
          post: {
            requestBody: { content: { 'application/json': { schema: { $ref: '#/components/schemas/A' } } } },
            responses: {
              '200': {
                description: 'ok',
                content: { 'application/json': { schema: { $ref: '#/components/schemas/Missing' } } },
                // $refs in parts search does not read are never followed.
                'x-code-samples': [{ $ref: '#/nowhere/at/all' }],
              },
            },
          },
        },
        '/b': { $ref: '#/components/pathItems/Missing' },
      },
      components: {
        schemas: {
          A: { type: 'object', properties: { text: { $ref: '#/components/examples/AString/value' } } },
        },
        examples: { AString: { value: 'just a string' } },
      },
    });
    const spec = await loadSpec('dangling', file);
    expect(spec.warnings).toEqual([
      '#/paths/~1a/post/responses/200/content/application~1json/schema: $ref #/components/schemas/Missing points nowhere: the spec has nothing at that JSON pointer',
      '#/paths/~1b: $ref #/components/pathItems/Missing points nowhere: the spec has nothing at that JSON pointer',
      '#/components/schemas/A/properties/text: $ref #/components/examples/AString/value points at a string ("just a string"), not a schema',
    ]);
    const dangling = record(spec);
    expect(dangling.warnings).toEqual(spec.warnings);
    expect(dangling.operations).toHaveLength(1);
    expect(dangling.operations[0].responses!['200'].schema).toEqual({
      $ref: '#/components/schemas/Missing',
      unresolved: '$ref #/components/schemas/Missing points nowhere: the spec has nothing at that JSON pointer',
    });
  });

  it('fails the provider alone, naming it, the source and the cause', async () => {
    const missing = join(tmp, 'missing.json');
    const cases: Array<[string, RegExp]> = [
      [missing, /ENOENT/],
      [writeSpec('not-openapi.json', { name: 'package' }), /not an OpenAPI 3\.x or Swagger 2\.0 document/],
      [writeSpec('broken.json', '{ "openapi": "3.0.0", '), /the file is not valid JSON: /],
      [writeSpec('broken.yaml', 'openapi: 3.0.0\ninfo: [unclosed\n'), /the file is neither JSON nor valid YAML: /],
      [writeSpec('list.json', '[1, 2]'), /the document is not a JSON\/YAML object/],
    ];
    for (const [file, cause] of cases) {
      const spec = await loadSpec('crm', file);
      expect(spec.json).toBeUndefined();
      expect(spec.error).toMatch(`Cannot load the OpenAPI spec of provider "crm" from ${file}: `);
      expect(spec.error).toMatch(cause);
    }
  });
});

describe('spec URLs', () => {
  let server: Server;
  let base: string;
  const doc = JSON.stringify({
    openapi: '3.0.0',
    info: { title: 'Served', version: '1' },
    paths: { '/x': { get: {} } },
  });
  beforeAll(async () => {
    server = createServer((req, res) => {
      if (req.url === '/slow') return; // never answers
      if (req.url === '/gone') return res.writeHead(404).end('no');
      res.writeHead(200, { 'content-type': 'application/json' }).end(doc);
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  });
  afterAll(() => {
    server.closeAllConnections();
    server.close();
  });

  it('loads a spec from a URL', async () => {
    expect(record(await loadSpec('served', `${base}/openapi.json`)).operations).toHaveLength(1);
  });

  it('marks the provider failed when the URL is slow, missing or down', async () => {
    const slow = await loadSpec('slow', `${base}/slow`, { timeoutMs: 300 });
    expect(slow.error).toBe(
      `Cannot load the OpenAPI spec of provider "slow" from ${base}/slow: no complete answer within 300 ms (openapiTimeoutMs)`,
    );
    expect((await loadSpec('gone', `${base}/gone`)).error).toMatch(/from .*\/gone: the server answered HTTP 404/);
    const closed = createServer();
    await new Promise<void>((resolve) => closed.listen(0, '127.0.0.1', resolve));
    const { port } = closed.address() as AddressInfo;
    await new Promise((resolve) => closed.close(resolve));
    const down = await loadSpec('down', `http://127.0.0.1:${port}/openapi.json`);
    expect(down.error).toMatch(/from http:\/\/127\.0\.0\.1:\d+\/openapi\.json: fetch failed: .*ECONNREFUSED/);
  });
});

describe('the spec cache', () => {
  it('reduces a spec once per content: a second load reads the record; a changed file is reduced again', async () => {
    const store = new LocalBlobStore(join(tmp, 'cache-blobs'));
    const file = writeSpec('cached.json', {
      openapi: '3.0.0',
      info: { title: 'Cached', version: '1' },
      paths: { '/a': { get: { operationId: 'a' } } },
    });
    const first = await loadSpec('cached', file, { cache: store });
    expect(first.cached).toBeUndefined();
    const second = await loadSpec('other', file, { cache: store });
    expect(second).toMatchObject({ provider: 'other', cached: true, json: first.json, warnings: [] });
    writeSpec('cached.json', {
      openapi: '3.0.0',
      info: { title: 'Cached', version: '2' },
      paths: { '/a': { get: { operationId: 'a' } }, '/b': { get: { operationId: 'b' } } },
    });
    const changed = await loadSpec('cached', file, { cache: store });
    expect(changed.cached).toBeUndefined();
    expect(record(changed).operations).toHaveLength(2);
    expect((await loadSpec('cached', file, { cache: store })).cached).toBe(true);
  });

  it('keeps the warnings with the record, and reduces again when the record is unreadable', async () => {
    const store = new LocalBlobStore(join(tmp, 'cache-warnings'));
    const file = writeSpec('warned.json', {
      openapi: '3.0.0',
      info: { title: 'Warned', version: '1' },
      paths: { '/a': { get: { responses: { '200': { $ref: '#/components/responses/Nope' } } } } },
    });
    const first = await loadSpec('warned', file, { cache: store });
    expect(first.warnings).toHaveLength(1);
    expect(await loadSpec('warned', file, { cache: store })).toMatchObject({ cached: true, warnings: first.warnings });
    const name = `specs/v1/${createHash('sha256').update(readFileSync(file)).digest('hex')}`;
    expect(await store.getRecord(name)).toBeDefined();
    await store.putRecord(name, Buffer.from('not gzip'));
    const again = await loadSpec('warned', file, { cache: store });
    expect(again.cached).toBeUndefined();
    expect(again.json).toBe(first.json);
  });

  it('never caches a failure, so a later start retries', async () => {
    const store = new LocalBlobStore(join(tmp, 'cache-failures'));
    const file = writeSpec('later.json', '{ not yet');
    expect((await loadSpec('later', file, { cache: store })).error).toBeDefined();
    writeSpec('later.json', { openapi: '3.0.0', info: { title: 'Later', version: '1' }, paths: {} });
    expect((await loadSpec('later', file, { cache: store })).error).toBeUndefined();
  });
});

describe('readyProviders and request validation with a failed spec', () => {
  it('starts the other providers, reports the failure, and refuses calls to the failed one with its error', async () => {
    const broken = writeSpec('ready-broken.json', '{');
    const providers = {
      crm: { openapi: CRM_SPEC, ...http },
      broken: { openapi: broken, ...http },
      unchecked: { openapi: broken, ...http, validateRequests: false },
    };
    const warnings: string[] = [];
    const ready = await readyProviders(providers as never, { warn: (m) => warnings.push(m) });
    expect(ready.specs.map((s) => [s.provider, s.error === undefined])).toEqual([
      ['crm', true],
      ['broken', false],
      ['unchecked', false],
    ]);
    expect(warnings).toHaveLength(2);
    expect(warnings[0]).toMatch(
      /^durable-codemode: Cannot load the OpenAPI spec of provider "broken" from .*ready-broken\.json: the file is not valid JSON: .*spec\.providers\.broken\.error; calls to broken fail with a RequestError/,
    );
    const validators = requestValidators(providers as never, ready.specs);
    expect(Object.keys(validators)).toEqual(['crm', 'broken']);
    expect(validators.crm.check({ method: 'GET', path: '/leads' })).toBeUndefined();
    expect(validators.broken.check({ method: 'GET', path: '/anything' })).toMatch(
      /^broken: GET \/anything was not sent: requests to broken are checked against its OpenAPI spec, which failed to load\. Cannot load the OpenAPI spec of provider "broken" from .*: the file is not valid JSON: .* set validateRequests: false for broken to send requests unchecked\.$/,
    );
    await ready.upstream.close();
  });

  it('a validator built from operations names the closest ones', () => {
    const validator = new RequestValidator({
      provider: 'p',
      operations: [{ method: 'GET', path: '/leads', operationId: 'listLeads' }],
    });
    expect(validator.check({ method: 'GET', path: '/lead' })).toContain('Closest: GET /leads (listLeads)');
  });
});
