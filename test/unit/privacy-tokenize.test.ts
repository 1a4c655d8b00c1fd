/**
 * Tokenizing JSON and text, and restoring requests, through the Privacy facade on a real local
 * blob store: detectors inside strings, field rules by key, object keys, idempotence, the
 * per-provider choice, and the refusal of tokens a principal does not hold.
 */
import { existsSync, mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { beforeEach, describe, expect, it } from 'vitest';
import { LocalBlobStore } from '../../blobs/local-store.ts';
import type { HttpEffect, Json, ToolEffect } from '../../core/journal.ts';
import { PrivacyConfig, restoresFor, unknownPrivacyProviders } from '../../privacy/config.ts';
import { Privacy } from '../../privacy/privacy.ts';

let dir: string;
let privacy: Privacy;

function privacyWith(raw: Record<string, unknown>): Privacy {
  return new Privacy(PrivacyConfig.parse({ enabled: true, ...raw }), { store: new LocalBlobStore(dir) });
}

beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'dcm-privacy-'));
  privacy = privacyWith({
    fields: ['name', { key: 'addr', kind: 'ADDRESS' }],
    patterns: [{ kind: 'EMPLOYEE_ID', regex: String.raw`\bE-\d{6}\b` }],
  });
});

const lead = (i: number) => ({
  id: `lead_${String(i).padStart(6, '0')}`,
  name: `Ada Lovelace ${i}`,
  email: `ada.${i}@example.com`,
  phone: `+1 212 555 ${String(i).padStart(4, '0')}`,
  company: 'Analytical Engines Ltd',
});

describe('privacy: tokenizing', () => {
  it('replaces personal data in strings, field values and keys, leaving the rest as it was', async () => {
    const value = {
      leads: [lead(1), lead(2), lead(1)],
      note: 'ask ada.2@example.com or E-123456 about it',
      perEmail: { 'ada.1@example.com': 2 },
      owner: { name: { first: 'Grace', last: 'Hopper' }, age: 85 },
      schema: { name: { type: 'string', examples: ['x@example.org'] } },
      addr: ['1 Main St', 12, null, true],
      count: 3,
    };
    const out = await privacy.tokenize('alice', value);
    expect(out).toEqual({
      leads: [
        {
          id: 'lead_000001',
          name: '[NAME_1]',
          email: '[EMAIL_1]',
          phone: '[PHONE_1]',
          company: 'Analytical Engines Ltd',
        },
        {
          id: 'lead_000002',
          name: '[NAME_2]',
          email: '[EMAIL_2]',
          phone: '[PHONE_2]',
          company: 'Analytical Engines Ltd',
        },
        {
          id: 'lead_000001',
          name: '[NAME_1]',
          email: '[EMAIL_1]',
          phone: '[PHONE_1]',
          company: 'Analytical Engines Ltd',
        },
      ],
      note: 'ask [EMAIL_2] or [EMPLOYEE_ID_1] about it',
      perEmail: { '[EMAIL_1]': 2 },
      // An object under a field key is searched like any other: list `first` and `last` to cover them.
      owner: { name: { first: 'Grace', last: 'Hopper' }, age: 85 },
      schema: { name: { type: 'string', examples: ['[EMAIL_3]'] } },
      addr: ['[ADDRESS_1]', '[ADDRESS_2]', null, true],
      count: 3,
    });
    expect(value.leads[0].email).toBe('ada.1@example.com'); // a copy; the input is untouched
    expect(await privacy.tokenize('alice', out)).toEqual(out); // tokenizing twice changes nothing
    expect(await privacy.tokenize('alice', { again: lead(2) })).toMatchObject({ again: { email: '[EMAIL_2]' } });
  });

  it('answers a value without personal data as it is, without touching the vault', async () => {
    const value = { job_id: 'job-123e4567-e89b-12d3-a456-426614174000', count: 10_000, at: '2024-05-01T10:00:00Z' };
    expect(await privacy.tokenize('alice', value)).toBe(value);
    expect(existsSync(join(dir, 'records'))).toBe(false);
  });

  it('tokenizes texts with the detectors', async () => {
    expect(await privacy.tokenizeText('bob', 'failed for grace@navy.mil (+44 20 7946 0958)')).toBe(
      'failed for [EMAIL_1] ([PHONE_1])',
    );
  });

  it('does nothing while disabled', async () => {
    const off = privacyWith({ enabled: false });
    expect(await off.tokenize('alice', lead(1))).toEqual(lead(1));
    expect(await off.tokenizeText('alice', 'ada@example.com')).toBe('ada@example.com');
  });
});

describe('privacy: restoring', () => {
  const http = (fields: Partial<HttpEffect>): HttpEffect => ({
    kind: 'http',
    provider: 'crm',
    method: 'POST',
    path: '/leads',
    ...fields,
  });

  it('restores tokens in path (percent-encoded), query, body values and keys', async () => {
    const tokens = await privacy.tokenize('alice', { e: 'ada.1@example.com', n: { name: 'Ada Lovelace' } });
    expect(tokens).toEqual({ e: '[EMAIL_1]', n: { name: '[NAME_1]' } });
    const request = http({
      path: '/leads/by-name/[NAME_1]',
      query: { email: '[EMAIL_1]', tags: ['x', '[NAME_1]'] },
      body: { to: 'Dear [NAME_1] <[EMAIL_1]>', '[EMAIL_1]': true, count: 2 },
    });
    expect(await privacy.restore('alice', request, 'crm: POST /leads')).toEqual({
      ...request,
      path: '/leads/by-name/Ada%20Lovelace',
      query: { email: 'ada.1@example.com', tags: ['x', 'Ada Lovelace'] },
      body: { to: 'Dear Ada Lovelace <ada.1@example.com>', 'ada.1@example.com': true, count: 2 },
    });
    const tool: ToolEffect = { kind: 'tool', provider: 'crm', tool: 'send', args: { to: '[EMAIL_1]' } };
    expect(await privacy.restore('alice', tool, 'crm: tool send')).toEqual({
      ...tool,
      args: { to: 'ada.1@example.com' },
    });
  });

  it('leaves a request without tokens as it is', async () => {
    const request = http({ body: { note: 'a [bracket] and [NOT A TOKEN]' } });
    expect(await privacy.restore('alice', request, 'crm: POST /leads')).toBe(request);
  });

  it("refuses tokens the principal does not hold, naming them: unknown, or another principal's", async () => {
    await privacy.tokenize('alice', { email: 'ada.1@example.com' });
    const request = http({ body: { email: '[EMAIL_1]', other: '[PHONE_9]' } });
    await expect(privacy.restore('alice', request, 'crm: POST /leads')).rejects.toMatchObject({
      name: 'PrivacyTokenError',
      message: expect.stringMatching(/^crm: POST \/leads was not sent: \[PHONE_9\] is not in your privacy vault/),
    });
    await expect(privacy.restore('bob', http({ query: { email: '[EMAIL_1]' } }), 'crm: POST /leads')).rejects.toThrow(
      /\[EMAIL_1\] is not in your privacy vault/,
    );
  });

  it('sends tokens as written to providers that do not get real values', async () => {
    await privacy.tokenize('alice', { email: 'ada.1@example.com' });
    const only = privacyWith({ providers: { only: ['crm'] } });
    const except = privacyWith({ providers: { except: ['analytics'] } });
    const toAnalytics = http({ provider: 'analytics', body: { who: '[EMAIL_1]' } });
    expect(await only.restore('alice', toAnalytics, 'analytics: POST /leads')).toBe(toAnalytics);
    expect(await except.restore('alice', toAnalytics, 'analytics: POST /leads')).toBe(toAnalytics);
    expect(await except.restore('alice', http({ body: { who: '[EMAIL_1]' } }), 'crm: POST /leads')).toMatchObject({
      body: { who: 'ada.1@example.com' },
    });
  });
});

describe('privacy: config', () => {
  it('has defaults: off, all built-in detectors, 30 days, every provider', () => {
    const config = PrivacyConfig.parse(undefined);
    expect(config).toMatchObject({ enabled: false, detectors: ['email', 'phone', 'iban', 'card'], retentionDays: 30 });
    expect(restoresFor(config, 'crm')).toBe(true);
  });

  it('derives kinds from field keys and checks patterns and kinds', () => {
    expect(PrivacyConfig.parse({ fields: ['first_name', 'phoneNumber'] }).fields).toEqual([
      { key: 'first_name', kind: 'FIRST_NAME' },
      { key: 'phoneNumber', kind: 'PHONE_NUMBER' },
    ]);
    const problems = (raw: unknown) =>
      PrivacyConfig.safeParse(raw).error?.issues.map((i) => `${i.path.join('.')}: ${i.message}`);
    expect(problems({ fields: ['2fa'] })).toEqual([expect.stringMatching(/^fields\.0: this key makes no valid kind/)]);
    expect(problems({ patterns: [{ kind: 'ID', regex: '([' }] })).toEqual([
      'patterns.0: not a valid JavaScript regular expression',
    ]);
    expect(problems({ patterns: [{ kind: 'id_2', regex: 'x' }] })).toEqual([
      expect.stringMatching(/^patterns\.0\.kind: a kind is upper-case words/),
    ]);
  });

  it('names providers the section mentions that are not configured', () => {
    const config = PrivacyConfig.parse({ providers: { only: ['crm', 'crn'], except: ['slack'] } });
    expect(unknownPrivacyProviders(config, ['crm', 'sheets'])).toEqual(['crn', 'slack']);
  });
});

describe('privacy: public providers (providers.public)', () => {
  const http = (provider: string): HttpEffect => ({ kind: 'http', provider, method: 'GET', path: '/x' });
  const ok = (value: Json) => ({ ok: true as const, value });

  it('notes what only public providers returned, never what another provider returned, even in an error', () => {
    const p = privacyWith({ fields: ['name'], providers: { public: ['catalog'] } });
    const seen = p.provenance();
    seen.observe(
      [http('catalog'), http('crm'), http('catalog')],
      [
        ok({ items: [{ sku: '+1 212 555 0001' }, { sku: '+1 212 555 0002' }], owner: { name: 'Acme Stores' } }),
        ok({ phone: '+1 212 555 0002' }),
        { ok: false, error: { name: 'ApiError', message: 'no such item' } },
      ],
    );
    expect([...seen.values].sort()).toEqual(['+1 212 555 0001', 'Acme Stores']);
    expect(seen.changed()).toEqual(['+1 212 555 0001', 'Acme Stores']);
    expect(seen.changed()).toBeUndefined();
    seen.observe([http('crm')], [{ ok: false, error: { name: 'ApiError', message: 'no customer +1 212 555 0001' } }]);
    expect(seen.changed()).toEqual(['Acme Stores']);
  });

  it('shows public values as they are unless the principal already holds a token for them, adding none', async () => {
    const asIs = new Set(['+1 212 555 0001', '+1 212 555 0002', '42']);
    const known = await privacy.tokenizeText('alice', 'call +1 212 555 0002');
    const shown = await privacy.tokenize(
      'alice',
      { sku: '+1 212 555 0001', other: '+1 212 555 0002', name: 42, email: 'ada@example.com' },
      { asIs },
    );
    expect(shown).toEqual({ sku: '+1 212 555 0001', other: known.slice(5), name: 42, email: '[EMAIL_1]' });
    expect(await privacy.tokenizeText('alice', 'sku +1 212 555 0001', asIs)).toBe('sku +1 212 555 0001');
    // Nothing was added for the public value: without `asIs` it gets the next number, as a new value.
    expect(await privacy.tokenizeText('alice', '+1 212 555 0001')).toBe('[PHONE_2]');
  });

  it('keeps public values sealed per job, and finds none for a job without', async () => {
    const p = privacyWith({ providers: { public: ['catalog'] } });
    await p.publicValues.save('job-1', ['+1 212 555 0001']);
    expect(await p.publicValuesOf('job-1')).toEqual(new Set(['+1 212 555 0001']));
    expect(await p.publicValuesOf('job-2')).toEqual(new Set());
    expect(await privacy.publicValuesOf('job-1')).toEqual(new Set()); // no public provider: not even read
  });
});
