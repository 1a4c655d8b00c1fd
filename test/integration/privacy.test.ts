/**
 * Privacy end to end (issue 16): a lead import from the sheets demo API into the CRM with privacy
 * on and the payload codec set. The APIs get every real value; every byte the MCP clients of alice
 * and bob receive (answers, logs, progress, errors, result previews and pages, search answers) is
 * scanned for the sheet's emails, phones and names. A follow-up job reaches the right record by
 * token, bob cannot use alice's tokens, tokens are stable across jobs, the vault is sealed with the
 * codec key, and a purge ends a principal's tokens.
 */
import { randomBytes } from 'node:crypto';
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import type { Client as McpClient } from '@modelcontextprotocol/sdk/client/index.js';
import { Client, Connection } from '@temporalio/client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  demoProvidersConfig,
  startCrmApi,
  startSheetsApi,
  type CrmApi,
  type SheetsApi,
} from '../../demo-apis/index.ts';
import { sheetRow } from '../../demo-apis/sheets.ts';
import { LocalBlobStore } from '../../blobs/local-store.ts';
import { Privacy } from '../../privacy/privacy.ts';
import { readyProviders } from '../../providers/ready.ts';
import { SpecSearch } from '../../sandbox/search.ts';
import { loadTokens } from '../../server/auth.ts';
import { startMcpHttpServer, type McpHttpServer } from '../../server/http.ts';
import { type AesGcmCodec, CODEC_KEY_ENV, codecFromEnv } from '../../temporal/codec.ts';
import {
  eventually,
  finished,
  mcpOverHttp,
  resultBudget,
  startInProcessStack,
  testConfig,
  texts,
  type InProcessStack,
} from '../harness.ts';

const ROWS = 60;
const ALICE = 'alice-token-0123456789';
const BOB = 'bob-token-0123456789abc';
const CAROL = 'carol-token-0123456789ab';
const TOKEN = /^\[[A-Z]+_\d+\]$/;

let crm: CrmApi;
let sheets: SheetsApi;
/** A public directory (privacy.providers.public): the sheets demo API with a sheet of offices. */
let directory: SheetsApi;
let stack: InProcessStack;
let search: SpecSearch;
let http: McpHttpServer;
let alice: McpClient;
let bob: McpClient;
let carol: McpClient;
/** A Temporal client without the codec key: what Temporal itself, its database and a UI without the codec see. */
let raw: Client;
let codec: AesGcmCodec;
/** Every HTTP response body the two MCP clients received. */
const traffic: string[] = [];
const people = Array.from({ length: ROWS }, (_, i) => sheetRow('leads', i));
/** What must never reach a client: every email, phone and name of the sheet. */
const personal = [...new Set(people.flatMap((p) => [p.email, p.phone, p.name]))];

beforeAll(async () => {
  process.env[CODEC_KEY_ENV] = randomBytes(32).toString('base64');
  crm = await startCrmApi();
  sheets = await startSheetsApi({ sheets: { leads: ROWS } });
  directory = await startSheetsApi({ sheets: { offices: 3 } });
  codec = codecFromEnv()!;
  const demo = demoProvidersConfig({ crm, sheets });
  const config = testConfig({
    providers: {
      ...demo,
      // Single creates wait for a human; failures are retried twice, quickly.
      crm: {
        ...demo.crm,
        approval: [{ match: ['POST /leads'] }],
        retry: { maximumAttempts: 3, initialIntervalMs: 100 },
      },
      directory: { ...demo.sheets, baseUrl: directory.url },
    },
    privacy: { enabled: true, fields: ['name'], providers: { public: ['directory'] } },
    results: { maxTokens: 1500 },
  });
  stack = await startInProcessStack(config);
  search = await SpecSearch.create((await readyProviders(config.providers)).specs);
  const tokens = loadTokens(config.http, { DURABLE_CODEMODE_HTTP_TOKENS: `alice:${ALICE},bob:${BOB},carol:${CAROL}` });
  http = await startMcpHttpServer(
    {
      jobs: stack.jobs,
      budget: resultBudget(config),
      search,
      providers: Object.keys(config.providers),
      defaultWaitSeconds: 30,
      privacy: stack.privacy,
    },
    { host: '127.0.0.1', port: 0, tokens },
  );
  raw = new Client({
    connection: await Connection.connect({ address: config.temporal.address }),
    namespace: config.temporal.namespace,
  });
  alice = await mcpOverHttp(http.url, ALICE, (body) => traffic.push(body));
  bob = await mcpOverHttp(http.url, BOB, (body) => traffic.push(body));
  carol = await mcpOverHttp(http.url, CAROL);
});

afterAll(async () => {
  await alice?.close();
  await bob?.close();
  await carol?.close();
  await http?.close();
  await raw?.connection.close();
  search?.dispose();
  await stack?.close();
  await crm?.close();
  await sheets?.close();
  await directory?.close();
  delete process.env[CODEC_KEY_ENV];
});

type Answer = Record<string, any>;

async function tool(client: McpClient, name: string, args: Record<string, unknown>): Promise<Answer> {
  const result = await client.callTool({ name, arguments: args });
  return result.structuredContent ?? { text: (result.content as Array<{ text: string }>)[0].text };
}

const execute = (client: McpClient, code: string) => tool(client, 'execute', { code, wait_seconds: 60 });

/** The job's history as anyone without the codec key reads it (every string, every payload's bytes). */
async function historyWithoutKey(jobId: string): Promise<string> {
  return texts(await raw.workflow.getHandle(jobId).fetchHistory()).join('\n');
}

/** The personal data of the sheet found in `text`. */
const personalIn = (text: string) => personal.filter((value) => text.includes(value));

/** All leads the CRM holds, read directly (the test is the operator, not the model). */
async function crmLeads(): Promise<Array<Record<string, string>>> {
  const response = await fetch(`${crm.url}/leads?limit=1000`);
  return ((await response.json()) as { leads: Array<Record<string, string>> }).leads;
}

const IMPORT = `async () => {
  const csv = await sheets.request({ method: 'GET', path: '/sheets/leads/csv' });
  const rows = await step('parse', () => CSV.parse(csv));
  for (let i = 0; i < rows.length; i += 20) {
    await crm.request({ method: 'POST', path: '/leads/batch', body: { leads: rows.slice(i, i + 20) } });
    progress(i + 20, rows.length, 'imported up to ' + rows[Math.min(i + 19, rows.length - 1)].email);
  }
  console.log('first lead:', rows[0].email, rows[0].phone);
  return { created: rows.length, sample: rows.slice(0, 3), domains: [...new Set(rows.map((r) => r.email.split('@')[1]))] };
}`;

let sample: Array<Record<string, string>>;

describe('privacy', () => {
  it('imports every real email and phone into the CRM while alice sees tokens', async () => {
    const answer = await execute(alice, IMPORT);
    expect(answer.status, JSON.stringify(answer)).toBe('completed');
    const leads = await crmLeads();
    expect(leads.map((l) => l.email).sort()).toEqual(people.map((p) => p.email).sort());
    expect(leads.map((l) => l.phone).sort()).toEqual(people.map((p) => p.phone).sort());

    sample = answer.result.sample;
    for (const row of sample) {
      expect(row).toEqual({
        name: expect.stringMatching(/^\[NAME_\d+\]$/),
        email: expect.stringMatching(/^\[EMAIL_\d+\]$/),
        phone: expect.stringMatching(/^\[PHONE_\d+\]$/),
        company: expect.any(String),
        source: expect.any(String),
      });
    }
    // The sandbox saw real data: the script could still group by email domain.
    expect(answer.result.domains).toEqual(['example.com']);
    expect(answer.logs).toEqual([`first lead: ${sample[0].email} ${sample[0].phone}`]);
    expect(answer.progress.message).toMatch(/^imported up to \[EMAIL_\d+\]$/);
  });

  it('shows the same tokens in the next job, in previews and in every page of a large result', async () => {
    const answer = await execute(
      alice,
      `async () => CSV.parse(await sheets.request({ method: 'GET', path: '/sheets/leads/csv' }))`,
    );
    expect(answer.result_pages).toBeGreaterThan(1);
    expect(answer.result_preview.slice(0, 3)).toEqual(sample);
    let text = '';
    for (let page = 1; page <= answer.result_pages; page++) {
      text += (await tool(alice, 'job', { job_id: answer.job_id, page })).result_page;
    }
    const rows = JSON.parse(text) as Array<Record<string, string>>;
    expect(rows).toHaveLength(ROWS);
    expect(rows.slice(0, 3)).toEqual(sample);
    expect(new Set(rows.map((r) => r.email)).size).toBe(ROWS);
    for (const row of rows) for (const field of ['name', 'email', 'phone']) expect(row[field]).toMatch(TOKEN);
  });

  it("tokenizes a failed job's error and the search tool's answers", async () => {
    const failed = await execute(
      alice,
      `async () => { const rows = CSV.parse(await sheets.request({ method: 'GET', path: '/sheets/leads/csv' })); throw new Error('bad row ' + rows[3].email + ' / ' + rows[3].phone); }`,
    );
    expect(failed.status, JSON.stringify(failed)).toBe('failed');
    expect(failed.error.message).toMatch(/bad row \[EMAIL_\d+\] \/ \[PHONE_\d+\]/);
    // Specs keep no examples, so the search computes its personal data itself: the answer still passes the boundary.
    const found = await tool(alice, 'search', {
      code: `async () => ({ title: spec.providers.crm.title, contact: '${people[4].email}' })`,
    });
    expect(found.result).toEqual({ title: 'Demo CRM API', contact: expect.stringMatching(/^\[EMAIL_\d+\]$/) });
  });

  it("reaches the right record from a token: a follow-up job updates [EMAIL_7]'s lead", async () => {
    const real = (await stack.privacy.vault.of('alice').valuesOf(['[EMAIL_7]'])).get('[EMAIL_7]')!;
    expect(people.map((p) => p.email)).toContain(real);
    const answer = await execute(
      alice,
      `async () => {
        const { leads } = await crm.request({ method: 'GET', path: '/leads', query: { email: '[EMAIL_7]' } });
        return crm.request({ method: 'PATCH', path: '/leads/' + leads[0].id, body: { email: '[EMAIL_7]', source: 'follow-up' } });
      }`,
    );
    expect(answer.status, JSON.stringify(answer)).toBe('completed');
    expect(answer.result).toMatchObject({ email: '[EMAIL_7]', source: 'follow-up' });
    const updated = (await crmLeads()).filter((l) => l.source === 'follow-up');
    expect(updated.map((l) => l.email)).toEqual([real]);
  });

  it("refuses bob's use of alice's token, and the API sees nothing", async () => {
    const before = crm.stats().requests;
    const answer = await execute(
      bob,
      `async () => crm.request({ method: 'GET', path: '/leads', query: { email: '[EMAIL_7]' } })`,
    );
    expect(answer.status).toBe('failed');
    expect(answer.error).toMatchObject({ name: 'PrivacyTokenError' });
    expect(answer.error.message).toMatch(/\[EMAIL_7\] is not in your privacy vault/);
    expect(crm.stats().requests).toBe(before);
  });

  it("shows tokens in the Temporal UI's summary, details and current details, and in the job's queries", async () => {
    const who = people[5];
    const answer = await tool(alice, 'execute', {
      code: `async () => {\n  const who = '${who.email}';\n  console.log('calling', who);\n  progress(1, 2, 'calling ' + who);\n  await sleep(60_000);\n}`,
      wait_seconds: 0,
    });
    const handle = stack.client.workflow.getHandle(answer.job_id);
    const description = await handle.describe();
    const shown = [await description.staticSummary(), await description.staticDetails()].join('\n');
    expect(shown).toMatch(/const who = '\[EMAIL_\d+\]'/);
    expect(shown).not.toContain(who.email);
    // The worker tokenizes the round's logs and progress before the workflow holds them (operators query them, the UI shows them).
    const current = await eventually(async () => {
      const { currentDetails } = await handle.query<{ currentDetails: string }>('__temporal_workflow_metadata');
      return currentDetails || undefined;
    });
    expect(current).toMatch(/calling \[EMAIL_\d+\]/);
    const state = await handle.query<{ logs: string[]; progress: { message: string } }>('jobState');
    expect(state.logs).toEqual([expect.stringMatching(/^calling \[EMAIL_\d+\]$/)]);
    expect(state.progress.message).toMatch(/^calling \[EMAIL_\d+\]$/);
    expect(JSON.stringify([current, state])).not.toContain(who.email);
    await tool(alice, 'job', { job_id: answer.job_id, action: 'cancel' });
  });

  it("shows an approval's question and details as tokens: in the answer, the Temporal UI's current details and the job's state", async () => {
    const who = people[6];
    const answer = await tool(alice, 'execute', {
      code: `async () => {
        const rows = CSV.parse(await sheets.request({ method: 'GET', path: '/sheets/leads/csv' }));
        return approve('Email ' + rows[6].email + '?', { phone: rows[6].phone });
      }`,
      wait_seconds: 0,
    });
    const handle = stack.client.workflow.getHandle(answer.job_id);
    const current = await eventually(async () => {
      const { currentDetails } = await handle.query<{ currentDetails: string }>('__temporal_workflow_metadata');
      return currentDetails.includes('Waiting for approval') ? currentDetails : undefined;
    });
    expect(current).toMatch(/Email \[EMAIL_\d+\]\?/);
    const view = await tool(alice, 'job', { job_id: answer.job_id });
    expect(view.approvals.pending[0]).toMatchObject({
      question: expect.stringMatching(/^Email \[EMAIL_\d+\]\?$/),
      details: { phone: expect.stringMatching(/^\[PHONE_\d+\]$/) },
    });
    const state = JSON.stringify([current, await handle.query('jobState')]);
    for (const value of [who.email, who.phone]) expect(state).not.toContain(value);
    await tool(alice, 'job', { job_id: answer.job_id, action: 'cancel' });
  });

  it("shows a call held by the approval policy with tokens in the job's state, and nothing personal without the key", async () => {
    const who = people[8];
    const answer = await tool(alice, 'execute', {
      code: `async () => {
        const rows = CSV.parse(await sheets.request({ method: 'GET', path: '/sheets/leads/csv' }));
        return crm.request({ method: 'POST', path: '/leads', body: rows[8] });
      }`,
      wait_seconds: 0,
    });
    const handle = stack.client.workflow.getHandle(answer.job_id);
    const state = await eventually(async () => {
      const s = await handle.query<{ approvals?: { pending: Array<{ call?: { request: unknown } }> } }>('jobState');
      return s.approvals?.pending.length ? s : undefined;
    });
    expect(state.approvals!.pending[0].call!.request).toMatchObject({
      method: 'POST',
      path: '/leads',
      body: {
        email: expect.stringMatching(TOKEN),
        phone: expect.stringMatching(TOKEN),
        name: expect.stringMatching(TOKEN),
      },
    });
    const { currentDetails } = await handle.query<{ currentDetails: string }>('__temporal_workflow_metadata');
    const view = await tool(alice, 'job', { job_id: answer.job_id });
    expect(view.approvals.pending[0].call.request.body.email).toMatch(TOKEN);
    expect(personalIn(JSON.stringify([state, currentDetails]))).toEqual([]);
    expect(personalIn(await historyWithoutKey(answer.job_id))).toEqual([]);

    // Approved, the CRM gets the real values.
    await tool(alice, 'job', { job_id: answer.job_id, action: 'approve' });
    const done = await finished(stack.jobs, answer.job_id);
    expect(done.status, JSON.stringify(done)).toBe('completed');
    expect(crm.writes().at(-1)).toMatchObject({ route: 'POST /leads', status: 201, emails: [who.email] });
    expect(personalIn(await historyWithoutKey(answer.job_id))).toEqual([]);
  });

  it("keeps an API's own error text out of history in clear: sealed with the key, tokens once decoded", async () => {
    const who = people[9];
    crm.setFailureRate(1);
    let answer: Answer;
    try {
      answer = await execute(
        alice,
        `async () => {
          const rows = CSV.parse(await sheets.request({ method: 'GET', path: '/sheets/leads/csv' }));
          try { await crm.request({ method: 'GET', path: '/leads/' + rows[9].email }); } catch (e) { return e.message; }
        }`,
      );
    } finally {
      crm.setFailureRate(0);
    }
    expect(answer.status, JSON.stringify(answer)).toBe('completed');
    // The script saw the API's answer with the real value; the model sees the token.
    expect(answer.result).toMatch(/^crm: GET \/leads\/\[EMAIL_\d+\] failed after 3 attempt\(s\): .*503/);
    const history = await historyWithoutKey(answer.job_id);
    expect(history).toContain('binary/encrypted');
    expect(personalIn(history)).toEqual([]);
    // Decoded (the operator's codec endpoint), what the Temporal UI shows of the failure holds tokens.
    const events = (await raw.workflow.getHandle(answer.job_id).fetchHistory()).events ?? [];
    const summaries = await Promise.all(
      events
        .flatMap((event) => (event.userMetadata?.summary ? [event.userMetadata.summary] : []))
        .map(async (payload) => Buffer.from((await codec.decode([payload as never]))[0].data!).toString()),
    );
    const backOff = summaries.find((summary) => summary.includes('back off ('));
    expect(backOff).toMatch(/back off \(GET \/leads\/\[EMAIL_\d+\] → 503/);
    expect(summaries.join('\n')).not.toContain(who.email);
  });

  it('keeps the vault sealed with the codec key: no personal data in the store, unreadable without the key', async () => {
    const root = join(stack.config.dataDir, 'blobs', 'records', 'vault');
    const files = readdirSync(root, { recursive: true })
      .map((name) => join(root, String(name)))
      .filter((file) => statSync(file).isFile());
    expect(files.length).toBeGreaterThan(1);
    const stored = Buffer.concat(files.map((file) => readFileSync(file)));
    for (const value of personal) expect(stored.includes(Buffer.from(value)), value).toBe(false);
    const keyless = new Privacy(stack.config.privacy, {
      store: new LocalBlobStore(join(stack.config.dataDir, 'blobs')),
    });
    await expect(keyless.vault.of('alice').valuesOf(['[EMAIL_1]'])).rejects.toMatchObject({
      name: 'PrivacyVaultError',
    });
  });

  it("purges alice's vault: her tokens stop working", async () => {
    expect(await stack.privacy.purge('alice')).toBeGreaterThan(0);
    const before = crm.stats().requests;
    const answer = await execute(
      alice,
      `async () => crm.request({ method: 'GET', path: '/leads', query: { email: '[EMAIL_7]' } })`,
    );
    expect(answer.error).toMatchObject({ name: 'PrivacyTokenError' });
    expect(crm.stats().requests).toBe(before);
  });

  it('sent no email, phone or name of the sheet to either MCP client', async () => {
    await eventually(() => (traffic.length > 0 ? true : undefined));
    const all = traffic.join('\n');
    expect(all).toContain('[EMAIL_');
    const leaked = personal.filter((value) => all.includes(value) || all.includes(JSON.stringify(value).slice(1, -1)));
    expect(leaked).toEqual([]);
  });
});

describe('privacy with a public provider (providers.public: directory)', () => {
  /** The directory's offices: their phones are the leads' phones of the same rows (the demo sheets number them alike). */
  const offices = Array.from({ length: 3 }, (_, i) => sheetRow('offices', i));
  const READ_DIRECTORY = `(await directory.request({ method: 'GET', path: '/sheets/offices/rows' })).rows`;

  it('shows what only the public provider returned as it is, in the result and in the logs', async () => {
    expect(offices.map((o) => o.phone)).toEqual(people.slice(0, 3).map((p) => p.phone));
    const answer = await execute(
      carol,
      `async () => { const rows = ${READ_DIRECTORY}; console.log('first office:', rows[0].email, rows[0].phone); return rows; }`,
    );
    expect(answer.status, JSON.stringify(answer)).toBe('completed');
    expect(answer.result).toEqual(offices);
    expect(answer.logs).toEqual([`first office: ${offices[0].email} ${offices[0].phone}`]);
  });

  it('tokenizes a value that a private provider of the same job returned too', async () => {
    const answer = await execute(
      carol,
      `async () => { const rows = ${READ_DIRECTORY}; await sheets.request({ method: 'GET', path: '/sheets/leads/csv' }); return rows; }`,
    );
    expect(answer.status, JSON.stringify(answer)).toBe('completed');
    // The leads sheet has the same phones: personal data, so tokens; the offices' emails and names stay.
    expect(answer.result).toEqual(offices.map((o) => ({ ...o, phone: expect.stringMatching(/^\[PHONE_\d+\]$/) })));
  });

  it('tokenizes the same values from a private provider, and from then on wherever carol holds their tokens', async () => {
    const leads = await execute(
      carol,
      `async () => CSV.parse(await sheets.request({ method: 'GET', path: '/sheets/leads/csv' })).slice(0, 3)`,
    );
    const phones = leads.result.map((row: Record<string, string>) => row.phone);
    for (const phone of phones) expect(phone).toMatch(/^\[PHONE_\d+\]$/);
    const again = await execute(carol, `async () => ${READ_DIRECTORY}`);
    expect(again.result).toEqual(offices.map((o, i) => ({ ...o, phone: phones[i] })));
  });

  it("keeps the jobs' public values sealed in the blob store", async () => {
    const root = join(stack.config.dataDir, 'blobs', 'records', 'privacy', 'public');
    const files = readdirSync(root).map((name) => join(root, name));
    expect(files.length).toBeGreaterThan(0);
    const stored = Buffer.concat(files.map((file) => readFileSync(file)));
    for (const value of offices.flatMap((o) => [o.email, o.name]))
      expect(stored.includes(Buffer.from(value))).toBe(false);
  });
});
