import { once } from 'node:events';
import { existsSync, readFileSync } from 'node:fs';
import { connect } from 'node:net';
import { isAbsolute } from 'node:path';
import { setTimeout } from 'node:timers/promises';
import { afterAll, beforeAll, beforeEach, describe, expect, it, vi } from 'vitest';
import { startCrmApi } from '../../demo-apis/crm.ts';
import type { CrmApi } from '../../demo-apis/crm.ts';
import { DEMO_PORTS, demoProvidersConfig, startDemoApis } from '../../demo-apis/index.ts';
import { startSheetsApi } from '../../demo-apis/sheets.ts';
import type { SheetsApi } from '../../demo-apis/sheets.ts';

interface Reply {
  status: number;
  headers: Headers;
  body: any;
}

async function call(
  base: string,
  path: string,
  init: { method?: string; body?: unknown; headers?: Record<string, string> } = {},
): Promise<Reply> {
  const response = await fetch(base + path, {
    method: init.method ?? 'GET',
    headers: { 'content-type': 'application/json', ...init.headers },
    body: init.body === undefined ? undefined : typeof init.body === 'string' ? init.body : JSON.stringify(init.body),
  });
  const text = await response.text();
  const isJson = response.headers.get('content-type')?.startsWith('application/json');
  return { status: response.status, headers: response.headers, body: isJson ? JSON.parse(text) : text };
}

/** Minimal RFC 4180 parser, independent of the server's writer so quoting is really checked. */
function parseCsv(text: string): string[][] {
  const records: string[][] = [];
  let record: string[] = [];
  let field = '';
  let quoted = false;
  for (let i = 0; i < text.length; i++) {
    const char = text[i];
    if (quoted) {
      if (char === '"' && text[i + 1] === '"') {
        field += '"';
        i++;
      } else if (char === '"') quoted = false;
      else field += char;
    } else if (char === '"') quoted = true;
    else if (char === ',') {
      record.push(field);
      field = '';
    } else if (char === '\r' && text[i + 1] === '\n') {
      record.push(field);
      records.push(record);
      record = [];
      field = '';
      i++;
    } else field += char;
  }
  if (field !== '' || record.length > 0) records.push([...record, field]);
  return records;
}

function csvObjects(text: string): Record<string, string>[] {
  const [header, ...rows] = parseCsv(text);
  return rows.map((row) => Object.fromEntries(header.map((column, i) => [column, row[i]])));
}

const ada = {
  name: 'Ada Lovelace',
  email: 'ada@example.com',
  phone: '+44 20 7946 0958',
  company: 'Analytical Engines',
  source: 'webinar',
};

describe('CRM demo API', () => {
  let crm: CrmApi;
  beforeAll(async () => {
    crm = await startCrmApi();
  });
  afterAll(() => crm.close());
  beforeEach(() => crm.reset());

  it('creates, reads, lists, filters, updates and deletes leads', async () => {
    const created = await call(crm.url, '/leads', { method: 'POST', body: ada });
    expect(created.status).toBe(201);
    expect(created.body).toMatchObject({ ...ada, id: 'lead_000001' });
    expect(new Date(created.body.createdAt).toISOString()).toBe(created.body.createdAt);

    await call(crm.url, '/leads', { method: 'POST', body: { name: 'Grace Hopper', email: 'grace@example.com' } });
    expect((await call(crm.url, '/leads/lead_000001')).body).toEqual(created.body);

    const all = await call(crm.url, '/leads');
    expect(all.status).toBe(200);
    expect(all.body.total).toBe(2);
    expect(all.body.leads.map((lead: { id: string }) => lead.id)).toEqual(['lead_000001', 'lead_000002']);
    const page = await call(crm.url, '/leads?limit=1&offset=1');
    expect(page.body).toMatchObject({ total: 2, leads: [{ id: 'lead_000002' }] });
    const byEmail = await call(crm.url, '/leads?email=GRACE@example.com');
    expect(byEmail.body).toMatchObject({ total: 1, leads: [{ name: 'Grace Hopper' }] });

    const updated = await call(crm.url, '/leads/lead_000002', {
      method: 'PATCH',
      body: { email: 'grace.hopper@example.com', source: 'referral' },
    });
    expect(updated.body).toMatchObject({
      id: 'lead_000002',
      name: 'Grace Hopper',
      email: 'grace.hopper@example.com',
      source: 'referral',
    });
    expect((await call(crm.url, '/leads?email=grace@example.com')).body.total).toBe(0);
    expect((await call(crm.url, '/leads?email=grace.hopper@example.com')).body.total).toBe(1);
    const empty = await call(crm.url, '/leads/lead_000002', { method: 'PATCH', body: {} });
    expect(empty.status).toBe(400);
    expect((await call(crm.url, '/leads/lead_000002', { method: 'PATCH', body: { id: 'x' } })).status).toBe(400);

    expect((await call(crm.url, '/leads/lead_000001', { method: 'DELETE' })).status).toBe(204);
    expect((await call(crm.url, '/leads/lead_000001')).status).toBe(404);
    const missing = await call(crm.url, '/leads/lead_000001', { method: 'DELETE' });
    expect(missing.status).toBe(404);
    expect(missing.body.error).toEqual({ code: 'not_found', message: 'lead lead_000001 not found' });

    expect(crm.stats()).toMatchObject({
      requests: 14,
      leads: 1,
      duplicateEmails: 0,
      byRoute: {
        'POST /leads': 2,
        'GET /leads': 5,
        'GET /leads/{id}': 2,
        'PATCH /leads/{id}': 3,
        'DELETE /leads/{id}': 2,
      },
    });
  });

  it('rejects invalid input with a 400 naming the field', async () => {
    const cases: [unknown, string][] = [
      [{ name: 'Ada' }, 'email'],
      [{ name: '', email: 'ada@example.com' }, 'name'],
      [{ ...ada, company: 42 }, 'company'],
      [{ ...ada, company_name: 'X' }, 'company_name'],
    ];
    for (const [body, field] of cases) {
      const reply = await call(crm.url, '/leads', { method: 'POST', body });
      expect(reply.status).toBe(400);
      expect(reply.body.error.code).toBe('validation_error');
      expect(reply.body.error.message).toContain(field);
    }
    const badJson = await call(crm.url, '/leads', { method: 'POST', body: '{"name":' });
    expect(badJson.status).toBe(400);
    expect(badJson.body.error.code).toBe('invalid_json');
    expect((await call(crm.url, '/leads?limit=1001')).body.error.message).toBe(
      'limit must be an integer between 1 and 1000',
    );
    expect((await call(crm.url, '/leads?offset=-1')).status).toBe(400);
    expect(crm.stats().leads).toBe(0);
  });

  it('refuses a lead whose email is not an address with a 422 naming it, and logs every write', async () => {
    const single = await call(crm.url, '/leads', {
      method: 'POST',
      body: { name: 'Ada', email: 'not-an-email' },
      headers: { 'idempotency-key': 'k1' },
    });
    expect(single.status).toBe(422);
    expect(single.body.error).toEqual({
      code: 'invalid_email',
      message: 'email: not a valid email address: "not-an-email"',
    });
    const batch = await call(crm.url, '/leads/batch', {
      method: 'POST',
      body: { leads: [ada, { name: 'Bob', email: 'bob-at-example' }] },
    });
    expect(batch.status).toBe(422);
    expect(batch.body.error.message).toBe('leads.1.email: not a valid email address: "bob-at-example"');
    expect(crm.stats().leads).toBe(0);
    expect((await call(crm.url, '/leads', { method: 'POST', body: ada })).status).toBe(201);
    expect(crm.writes()).toEqual([
      { route: 'POST /leads', status: 422, emails: ['not-an-email'], idempotencyKey: 'k1' },
      { route: 'POST /leads/batch', status: 422, emails: [ada.email, 'bob-at-example'] },
      { route: 'POST /leads', status: 201, emails: [ada.email] },
    ]);
  });

  it('creates batches of 1..100 leads atomically', async () => {
    const leads = (n: number) =>
      Array.from({ length: n }, (_, i) => ({ name: `Lead ${i}`, email: `lead${i}@example.com` }));
    const batch = await call(crm.url, '/leads/batch', { method: 'POST', body: { leads: leads(100) } });
    expect(batch.status).toBe(201);
    expect(batch.body.count).toBe(100);
    expect(batch.body.created[99]).toMatchObject({ id: 'lead_000100', email: 'lead99@example.com' });

    const tooLarge = await call(crm.url, '/leads/batch', { method: 'POST', body: { leads: leads(101) } });
    expect(tooLarge.status).toBe(400);
    expect(tooLarge.body.error.message).toBe('batch too large: max 100');
    expect((await call(crm.url, '/leads/batch', { method: 'POST', body: { leads: [] } })).status).toBe(400);
    const oneBad = await call(crm.url, '/leads/batch', {
      method: 'POST',
      body: { leads: [...leads(2), { name: 'x' }] },
    });
    expect(oneBad.body.error.message).toContain('leads.2.email');
    expect(crm.stats()).toMatchObject({ leads: 100, byRoute: { 'POST /leads/batch': 4 } });
  });

  it('creates the valid leads of a partial batch and answers one result per lead', async () => {
    const leads = [ada, { name: 'Bob', email: 'bob-at-example' }, { name: 'Cy', email: 'cy@example.com' }];
    const mixed = await call(crm.url, '/leads/batch?partial=true', { method: 'POST', body: { leads } });
    expect(mixed.status).toBe(207);
    expect(mixed.body).toEqual({
      count: 2,
      results: [
        { status: 201, lead: expect.objectContaining({ id: 'lead_000001', email: ada.email }) },
        {
          status: 422,
          error: { code: 'invalid_email', message: 'leads.1.email: not a valid email address: "bob-at-example"' },
        },
        { status: 201, lead: expect.objectContaining({ id: 'lead_000002', email: 'cy@example.com' }) },
      ],
    });
    const clean = await call(crm.url, '/leads/batch?partial=true', {
      method: 'POST',
      body: { leads: [{ name: 'Di', email: 'di@example.com' }] },
    });
    expect(clean.status).toBe(201);
    expect(clean.body.results).toEqual([{ status: 201, lead: expect.objectContaining({ email: 'di@example.com' }) }]);
    // A malformed batch is still refused whole.
    const malformed = await call(crm.url, '/leads/batch?partial=true', { method: 'POST', body: { leads: [{}] } });
    expect(malformed.status).toBe(400);
    expect(crm.stats().leads).toBe(3);
    expect(crm.writes().map((w) => [w.status, w.emails])).toEqual([
      [207, leads.map((l) => l.email)],
      [201, ['di@example.com']],
      [400, []],
    ]);
  });

  it('counts creates whose email already exists', async () => {
    await call(crm.url, '/leads', { method: 'POST', body: ada });
    await call(crm.url, '/leads/batch', {
      method: 'POST',
      body: { leads: [{ ...ada, email: 'ADA@example.com' }, ada] },
    });
    expect(crm.stats()).toMatchObject({ leads: 3, duplicateEmails: 2 });
  });

  it('replays requests with a known Idempotency-Key without applying them again', async () => {
    const send = () => call(crm.url, '/leads', { method: 'POST', body: ada, headers: { 'idempotency-key': 'k1' } });
    const first = await send();
    const again = await send();
    expect(again.status).toBe(201);
    expect(again.body).toEqual(first.body);
    expect(again.headers.get('idempotent-replayed')).toBe('true');

    // Concurrent retries of a slow request must also apply it once.
    crm.setLatency(50);
    const concurrent = await Promise.all(
      Array.from({ length: 5 }, () =>
        call(crm.url, '/leads/batch', { method: 'POST', body: { leads: [ada] }, headers: { 'idempotency-key': 'k2' } }),
      ),
    );
    crm.setLatency(0);
    expect(new Set(concurrent.map((reply) => reply.body.created[0].id)).size).toBe(1);

    const del = (key: string) =>
      call(crm.url, '/leads/lead_000001', { method: 'DELETE', headers: { 'idempotency-key': key } });
    expect((await del('k3')).status).toBe(204);
    expect((await del('k3')).status).toBe(204);
    expect((await del('k4')).status).toBe(404);

    // Failed requests changed nothing, so their key is not remembered.
    const invalid = { name: 'x', email: 'bad' };
    expect(
      (await call(crm.url, '/leads', { method: 'POST', body: invalid, headers: { 'idempotency-key': 'k5' } })).status,
    ).toBe(422);
    expect(
      (await call(crm.url, '/leads', { method: 'POST', body: ada, headers: { 'idempotency-key': 'k5' } })).status,
    ).toBe(201);

    expect(crm.stats()).toMatchObject({ leads: 2, idempotentReplays: 6, duplicateEmails: 2 });
  });

  it('answers 413 to bodies over 5 MiB', async () => {
    const reply = await call(crm.url, '/leads', {
      method: 'POST',
      body: { ...ada, company: 'x'.repeat(5 * 1024 * 1024) },
    });
    expect(reply.status).toBe(413);
    expect(reply.body.error.code).toBe('payload_too_large');
    expect(crm.stats().leads).toBe(0);
  });

  it('logs nothing when a client goes away halfway through its request body', async () => {
    const logged = vi.spyOn(console, 'error').mockImplementation(() => undefined);
    try {
      const { port } = new URL(crm.url);
      const socket = connect(Number(port), '127.0.0.1');
      await once(socket, 'connect');
      socket.write(
        'POST /leads HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 1000\r\n\r\n{"name":',
      );
      await vi.waitFor(() => expect(crm.stats().requests).toBe(1));
      socket.destroy();
      await setTimeout(100);
      expect(logged).not.toHaveBeenCalled();
      expect(crm.stats().leads).toBe(0);
    } finally {
      logged.mockRestore();
    }
  });

  it('answers unknown paths with 404 and wrong methods with 405', async () => {
    expect((await call(crm.url, '/contacts')).status).toBe(404);
    const wrongMethod = await call(crm.url, '/leads/lead_000001', { method: 'POST', body: ada });
    expect(wrongMethod.status).toBe(405);
    expect(wrongMethod.headers.get('allow')).toBe('GET, PATCH, DELETE');
  });

  it('serves its spec without counting it', async () => {
    const spec = await call(crm.url, '/openapi.json');
    expect(crm.specUrl).toBe(`${crm.url}/openapi.json`);
    expect(spec.body).toEqual(
      JSON.parse(readFileSync(new URL('../../demo-apis/crm.openapi.json', import.meta.url), 'utf8')),
    );
    expect(crm.stats().requests).toBe(0);
  });

  it('records how many requests were handled at once', async () => {
    crm.setLatency(100);
    await Promise.all(Array.from({ length: 10 }, () => call(crm.url, '/leads')));
    crm.setLatency(0);
    expect(crm.stats().maxInFlight).toBe(10);
    await call(crm.url, '/leads');
    expect(crm.stats().maxInFlight).toBe(10);
  });

  it('injects reproducible 503 failures before applying anything', async () => {
    const flaky = await startCrmApi({ failureRate: 0.3, seed: 42 });
    try {
      const run = async () => {
        const statuses: number[] = [];
        for (let i = 0; i < 300; i++) {
          const reply = await call(flaky.url, '/leads', {
            method: 'POST',
            body: { name: 'n', email: `n${i}@example.com` },
          });
          if (reply.status === 503) expect(reply.headers.get('retry-after')).toBe('0');
          statuses.push(reply.status);
        }
        return statuses;
      };
      const statuses = await run();
      const rejected = statuses.filter((status) => status === 503).length;
      expect(rejected).toBeGreaterThan(60);
      expect(rejected).toBeLessThan(120);
      expect(flaky.stats()).toMatchObject({
        requests: 300,
        rejectedByFailureInjection: rejected,
        leads: 300 - rejected,
        byRoute: { 'POST /leads': 300 },
      });

      flaky.reset();
      expect(await run()).toEqual(statuses);

      flaky.setFailureRate(0);
      expect((await call(flaky.url, '/leads')).status).toBe(200);
    } finally {
      await flaky.close();
    }
  });

  it('requires the bearer token when configured', async () => {
    const secured = await startCrmApi({ requiredBearerToken: 's3cret' });
    try {
      expect((await call(secured.url, '/leads')).status).toBe(401);
      const wrong = await call(secured.url, '/leads', { headers: { authorization: 'Bearer nope' } });
      expect(wrong.status).toBe(401);
      expect(wrong.body.error.code).toBe('unauthorized');
      const right = await call(secured.url, '/leads', {
        method: 'POST',
        body: ada,
        headers: { authorization: 'Bearer s3cret' },
      });
      expect(right.status).toBe(201);
      expect((await call(secured.url, '/openapi.json')).status).toBe(200);
      expect(secured.stats().leads).toBe(1);
    } finally {
      await secured.close();
    }
  });

  it('explains a port that is already in use', async () => {
    const port = Number(new URL(crm.url).port);
    await expect(startCrmApi({ port })).rejects.toThrow(
      `CRM demo API could not listen on 127.0.0.1:${port}: port in use. Stop the other process or pass another port.`,
    );
  });
});

describe('Sheets demo API', () => {
  let sheets: SheetsApi;
  beforeAll(async () => {
    sheets = await startSheetsApi({ sheets: { leads: 250, big: 100_000, empty: 0 } });
  });
  afterAll(() => sheets.close());

  it('lists sheets and describes one', async () => {
    expect((await call(sheets.url, '/sheets')).body).toEqual({
      sheets: [
        { id: 'leads', rows: 250 },
        { id: 'big', rows: 100_000 },
        { id: 'empty', rows: 0 },
      ],
    });
    expect((await call(sheets.url, '/sheets/leads')).body).toEqual({
      id: 'leads',
      rows: 250,
      columns: ['name', 'email', 'phone', 'company', 'source'],
    });
    expect((await call(sheets.url, '/sheets/nope')).status).toBe(404);
    expect((await call(sheets.url, '/sheets/nope/csv')).status).toBe(404);
  });

  it('serves CSV with RFC 4180 quoting that round-trips to the JSON rows', async () => {
    const csv = await call(sheets.url, '/sheets/leads/csv');
    expect(csv.status).toBe(200);
    expect(csv.headers.get('content-type')).toBe('text/csv; charset=utf-8');
    expect(csv.body.startsWith('name,email,phone,company,source\r\n')).toBe(true);
    const fromCsv = csvObjects(csv.body);
    expect(fromCsv).toHaveLength(250);

    const fromJson = [
      ...(await call(sheets.url, '/sheets/leads/rows?limit=200')).body.rows,
      ...(await call(sheets.url, '/sheets/leads/rows?offset=200&limit=200')).body.rows,
    ];
    expect(fromCsv).toEqual(fromJson);
    expect(fromCsv.some((row) => row.company.includes(','))).toBe(true);
    expect(fromCsv.some((row) => row.company.includes('"'))).toBe(true);
    expect(new Set(fromCsv.map((row) => row.email)).size).toBe(250);
    expect(fromCsv[17].email).toMatch(/^[a-z]+\.[a-z]+\.17@example\.com$/);

    // Same data on every start.
    const again = await startSheetsApi();
    try {
      expect((await call(again.url, '/sheets/leads/csv')).body).toBe(csv.body);
    } finally {
      await again.close();
    }
  });

  it('slices CSV and JSON rows by offset and limit', async () => {
    const slice = csvObjects((await call(sheets.url, '/sheets/leads/csv?offset=10&limit=5')).body);
    const rows = await call(sheets.url, '/sheets/leads/rows?offset=10&limit=5');
    expect(rows.body.total).toBe(250);
    expect(slice).toEqual(rows.body.rows);
    expect(csvObjects((await call(sheets.url, '/sheets/leads/csv?offset=248')).body)).toHaveLength(2);
    expect((await call(sheets.url, '/sheets/leads/csv?offset=500')).body).toBe('name,email,phone,company,source\r\n');
    expect((await call(sheets.url, '/sheets/empty/csv')).body).toBe('name,email,phone,company,source\r\n');
    expect((await call(sheets.url, '/sheets/leads/rows')).body.rows).toHaveLength(100);
    const tooMany = await call(sheets.url, '/sheets/leads/rows?limit=1001');
    expect(tooMany.status).toBe(400);
    expect(tooMany.body.error.message).toContain('limit');
  });

  // Its speed is measured in bench/, not asserted here (shared machines are noisy).
  it('serves a 100,000-row sheet, the same bytes again from its cache', async () => {
    const csv = await call(sheets.url, '/sheets/big/csv');
    const rows = csvObjects(csv.body);
    expect(rows).toHaveLength(100_000);
    expect(new Set(rows.map((row) => row.email)).size).toBe(100_000);
    expect((await call(sheets.url, '/sheets/big/csv')).body).toBe(csv.body);
  });

  it('counts requests per route, not spec downloads', async () => {
    const before = sheets.stats();
    await call(sheets.url, '/sheets');
    await call(sheets.url, '/openapi.json');
    const after = sheets.stats();
    expect(after.requests).toBe(before.requests + 1);
    expect(after.byRoute['GET /sheets']).toBe((before.byRoute['GET /sheets'] ?? 0) + 1);
    expect(after.byRoute['GET /sheets/{id}/csv']).toBeGreaterThan(0);
  });

  it('requires the bearer token when configured', async () => {
    const secured = await startSheetsApi({ requiredBearerToken: 't0ken' });
    try {
      expect((await call(secured.url, '/sheets')).status).toBe(401);
      expect((await call(secured.url, '/sheets', { headers: { authorization: 'Bearer t0ken' } })).status).toBe(200);
      expect((await call(secured.url, '/openapi.json')).status).toBe(200);
    } finally {
      await secured.close();
    }
  });
});

describe('OpenAPI specs', () => {
  const operations: Record<string, string[]> = {
    'crm.openapi.json': [
      'GET /leads',
      'POST /leads',
      'POST /leads/batch',
      'GET /leads/{id}',
      'PATCH /leads/{id}',
      'DELETE /leads/{id}',
    ],
    'sheets.openapi.json': ['GET /sheets', 'GET /sheets/{id}', 'GET /sheets/{id}/csv', 'GET /sheets/{id}/rows'],
  };

  for (const [file, expected] of Object.entries(operations)) {
    it(`${file} documents every route and its $refs resolve`, () => {
      const spec = JSON.parse(readFileSync(new URL(`../../demo-apis/${file}`, import.meta.url), 'utf8'));
      expect(spec.openapi).toMatch(/^3\.1\./);
      expect(spec.info.title && spec.info.description).toBeTruthy();
      expect(spec.servers).toEqual([{ url: '/' }]);

      const found: string[] = [];
      for (const [path, item] of Object.entries<Record<string, any>>(spec.paths)) {
        for (const method of ['get', 'post', 'patch', 'delete'].filter((m) => item[m])) {
          const op = item[method];
          expect(op.operationId && op.summary && op.description && op.tags?.length).toBeTruthy();
          found.push(`${method.toUpperCase()} ${path}`);
        }
      }
      expect(found.sort()).toEqual([...expected].sort());

      const refs = JSON.stringify(spec).match(/"\$ref":"[^"]+"/g) ?? [];
      for (const ref of refs) {
        const pointer = ref.slice('"$ref":"#/'.length, -1).split('/');
        expect(
          pointer.reduce((node, key) => node?.[key], spec),
          ref,
        ).toBeDefined();
      }
    });
  }
});

describe('startDemoApis', () => {
  it('starts both APIs and describes them as providers', async () => {
    expect(DEMO_PORTS).toEqual({ crm: 4001, sheets: 4002 });
    const apis = await startDemoApis({ crmPort: 0, sheetsPort: 0 });
    try {
      const config = demoProvidersConfig(apis);
      expect(config.crm.baseUrl).toBe(apis.crm.url);
      expect(config.sheets.baseUrl).toBe(apis.sheets.url);
      for (const { openapi } of Object.values(config)) {
        expect(isAbsolute(openapi) && existsSync(openapi)).toBe(true);
      }
      expect((await call(apis.crm.url, '/leads')).status).toBe(200);
      expect((await call(apis.sheets.url, '/sheets')).body.sheets).toEqual([{ id: 'leads', rows: 250 }]);
    } finally {
      await apis.close();
    }
  });

  it('closes the CRM again when the sheets port is taken', async () => {
    const blocker = await startSheetsApi();
    try {
      const sheetsPort = Number(new URL(blocker.url).port);
      await expect(startDemoApis({ crmPort: 0, sheetsPort })).rejects.toThrow(
        `Sheets demo API could not listen on 127.0.0.1:${sheetsPort}: port in use.`,
      );
    } finally {
      await blocker.close();
    }
  });
});
