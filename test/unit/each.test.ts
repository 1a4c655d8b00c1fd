/**
 * each(items, fn, options) in the real sandbox (isolated-vm, no Temporal): items run
 * `concurrency` at a time with their calls in shared rounds, outcomes go to the ledger part of the
 * round reports instead of throwing, maxFailures ends it early, a resumed attempt skips the keys
 * done before, uncertain calls go through reconcile, and a dry run reports the plan.
 */
import { describe, expect, it } from 'vitest';
import { effectLabel } from '../../core/effects.ts';
import {
  RunnableJob,
  type EffectOutcome,
  type EffectRequest,
  type HttpEffect,
  type ReplayRound,
  type RoundReport,
} from '../../core/journal.ts';
import type { KnownItems } from '../../core/ledger.ts';
import { SandboxLimits } from '../../core/limits.ts';
import { effectKey, ScriptSession } from '../../sandbox/session.ts';

function job(code: string, input: unknown = null, limits: Partial<SandboxLimits> = {}): RunnableJob {
  return RunnableJob.parse({ jobId: 'job-each', code, input, limits: SandboxLimits.parse(limits) });
}

type Answer = (request: EffectRequest, call: number) => EffectOutcome;

/** The email in a request's body (the leads these tests import). */
const emailOf = (request: EffectRequest): string =>
  ((request as HttpEffect).body as { email?: string } | undefined)?.email ?? '';

const created: Answer = (request) => ({
  ok: true,
  value: { id: `lead-${emailOf(request)}` },
});

/** Drives a session to its end like the workflow, answering every call; returns the journal, reports and ledger. */
async function run(
  code: string,
  answer: Answer,
  options: { input?: unknown; known?: KnownItems; limits?: Partial<SandboxLimits> } = {},
) {
  const rounds: ReplayRound[] = [];
  let now = 1_000;
  let { session, report } = await ScriptSession.open({
    job: job(code, options.input, options.limits),
    providers: [{ name: 'crm' }],
    rounds: [],
    now,
    known: options.known,
  });
  const reports: RoundReport[] = [report];
  const requests: EffectRequest[] = [];
  while (!report.outcome) {
    const outcomes = report.effects.map((request) => answer(request, requests.push(request) - 1));
    rounds.push({
      now,
      steps: report.steps,
      effects: report.effects.map((request, i) => ({
        key: effectKey(request),
        label: effectLabel(request),
        outcome: outcomes[i],
      })),
    });
    now += 1_000;
    report = await session.deliver(outcomes, now);
    reports.push(report);
  }
  const entries = reports.flatMap((r) => r.ledger?.entries ?? []);
  return { rounds, reports, requests, entries, outcome: report.outcome, last: report };
}

const rows = (n: number, bad: (i: number) => boolean = () => false) =>
  Array.from({ length: n }, (_, i) => ({ name: `Lead ${i}`, email: bad(i) ? `bad-${i}` : `lead${i}@example.com` }));

const IMPORT = `async () => each(input.rows, (row) => crm.request({ method: 'POST', path: '/leads', body: row }),
  { key: (row) => row.email, concurrency: 10, ...input.options })`;

/** The CRM's answer: 422 for a malformed email, else created. */
const validating: Answer = (request, call) => {
  const email = emailOf(request);
  if (!email.includes('@'))
    return {
      ok: false,
      error: {
        name: 'ApiError',
        message: `crm: POST /leads → 422 Unprocessable Entity: email: Invalid email address`,
        status: 422,
        body: { error: 'validation_error' },
      },
    };
  return created(request, call);
};

describe('each()', () => {
  it('runs `concurrency` items per round and records every outcome in the ledger', async () => {
    const { rounds, entries, outcome, last } = await run(IMPORT, created, { input: { rows: rows(25) } });
    expect(rounds.map((r) => r.effects.length)).toEqual([10, 10, 5]);
    expect(outcome).toEqual({
      kind: 'returned',
      value: { done: 25, failed: 0, uncertain: 0, skipped: 0, ledger: 'items' },
    });
    expect(entries).toHaveLength(25);
    expect(entries[3]).toEqual({
      ledger: 'items',
      key: 'lead3@example.com',
      index: 3,
      status: 'done',
      value: { id: 'lead-lead3@example.com' },
    });
    expect(last.ledger?.counts).toEqual({ items: { total: 25, done: 25, failed: 0, uncertain: 0, skipped: 0 } });
    expect(last.progress).toMatchObject({ done: 25, total: 25 });
    expect(last.progress?.message).toMatch(/^items: 25 done, 0 failed · \d+\/s$/);
  });

  it('records a failing item with its reason and the item itself, and goes on', async () => {
    const { entries, outcome, requests } = await run(IMPORT, validating, {
      input: { rows: rows(30, (i) => i % 7 === 3) },
    });
    expect(requests).toHaveLength(30);
    expect(outcome).toMatchObject({ kind: 'returned', value: { done: 26, failed: 4 } });
    const failed = entries.filter((e) => e.status === 'failed');
    expect(failed.map((e) => e.index)).toEqual([3, 10, 17, 24]);
    expect(failed[0]).toEqual({
      ledger: 'items',
      key: 'bad-3',
      index: 3,
      status: 'failed',
      error: {
        name: 'ApiError',
        status: 422,
        message: 'crm: POST /leads → 422 Unprocessable Entity: email: Invalid email address',
      },
      item: { name: 'Lead 3', email: 'bad-3' },
    });
  });

  it('ends early past maxFailures (a count or a fraction) with a TooManyFailuresError naming the first failure', async () => {
    for (const maxFailures of [2, 0.08]) {
      const { outcome, requests, entries } = await run(IMPORT, validating, {
        input: { rows: rows(30, (i) => i % 7 === 3), options: { maxFailures, concurrency: 5 } },
      });
      expect(outcome?.kind).toBe('threw');
      const error = (outcome as { error: { name: string; message: string; line?: number } }).error;
      expect(error.name).toBe('TooManyFailuresError');
      expect(error.message).toContain('3 of 30 items failed, more than options.maxFailures allows (');
      expect(error.message).toContain('The first: key "bad-3", ApiError 422: crm: POST /leads → 422');
      expect(error.line).toBe(1);
      // The third failure (index 17) stops it: no item after the round it was in was started.
      expect(requests.length).toBeLessThan(30);
      expect(entries.filter((e) => e.status === 'failed')).toHaveLength(3);
    }
  });

  it('lets the script catch TooManyFailuresError and fn catch its own errors', async () => {
    const { outcome } = await run(
      `async () => {
        try {
          await each(input.rows, async (row) => crm.request({ method: 'POST', path: '/leads', body: row }), { maxFailures: 0 });
        } catch (e) { return e.name; }
      }`,
      validating,
      { input: { rows: rows(5, (i) => i === 2) } },
    );
    expect(outcome).toEqual({ kind: 'returned', value: 'TooManyFailuresError' });
  });

  it('skips the keys an earlier attempt did without calling anything, whatever the new batching', async () => {
    const known: KnownItems = {
      items: { done: rows(20).map((r) => r.email), uncertain: [], failed: ['lead21@example.com'] },
    };
    const { requests, outcome, entries } = await run(IMPORT, created, {
      input: { rows: rows(25), options: { concurrency: 3 } },
      known,
    });
    expect(requests.map(emailOf)).toEqual([20, 21, 22, 23, 24].map((i) => `lead${i}@example.com`));
    expect(outcome).toMatchObject({ kind: 'returned', value: { done: 5, skipped: 20 } });
    expect(entries.map((e) => e.index)).toEqual([20, 21, 22, 23, 24]);
  });

  it('reconciles an uncertain call before running the item again, and only its writes ask for it', async () => {
    const code = `async () => each(input.rows, (row) => crm.request({ method: 'POST', path: '/leads', body: row }), {
      key: (row) => row.email,
      reconcile: async (row) => (await crm.request({ method: 'GET', path: '/leads', query: { email: row.email } })).leads[0]?.id,
    })`;
    // lead1's POST was sent by a worker that was lost (it landed); lead2's too, but it had not landed.
    const landed = new Set(['lead1@example.com']);
    const uncertainOnce = new Set(['lead1@example.com', 'lead2@example.com']);
    const { requests, entries, outcome } = await run(
      code,
      (request): EffectOutcome => {
        if (request.kind !== 'http') throw new Error('unexpected');
        if (request.method === 'GET') {
          const email = String(request.query?.email);
          return { ok: true, value: { leads: landed.has(email) ? [{ id: `found-${email}` }] : [] } };
        }
        const email = emailOf(request);
        expect(request.onUncertain).toBe('fail');
        if (uncertainOnce.delete(email))
          return { ok: false, error: { name: 'UncertainCallError', message: 'crm: POST /leads may have landed' } };
        return { ok: true, value: { id: `lead-${email}` } };
      },
      { input: { rows: rows(3) } },
    );
    expect(outcome).toMatchObject({ kind: 'returned', value: { done: 3, failed: 0, uncertain: 0 } });
    const byKey = Object.fromEntries(entries.map((e) => [e.key, e]));
    expect(byKey['lead0@example.com']).not.toHaveProperty('reconciled');
    expect(byKey['lead1@example.com']).toMatchObject({ reconciled: 'landed', value: 'found-lead1@example.com' });
    expect(byKey['lead2@example.com']).toMatchObject({
      reconciled: 'retried',
      value: { id: 'lead-lead2@example.com' },
    });
    // lead1: POST, GET (found); lead2: POST, GET (not found), POST again.
    const posts = requests.filter((r) => r.kind === 'http' && r.method === 'POST');
    expect(posts.map(emailOf)).toEqual([
      'lead0@example.com',
      'lead1@example.com',
      'lead2@example.com',
      'lead2@example.com',
    ]);
    expect(requests.filter((r) => r.kind === 'http' && r.method === 'GET').every((r) => !('onUncertain' in r))).toBe(
      true,
    );
  });

  it('keeps an item uncertain when there is no reconcile or reconcile fails, and reconciles known uncertain keys first', async () => {
    const uncertain: Answer = () => ({ ok: false, error: { name: 'UncertainCallError', message: 'may have landed' } });
    const plain = await run(IMPORT, uncertain, { input: { rows: rows(2) } });
    expect(plain.entries.map((e) => e.status)).toEqual(['uncertain', 'uncertain']);
    expect(plain.requests.every((r) => !('onUncertain' in r))).toBe(true);

    const code = `async () => each(input.rows, (row) => crm.request({ method: 'POST', path: '/leads', body: row }), {
      key: (row) => row.email,
      reconcile: async (row) => (await crm.request({ method: 'GET', path: '/leads', query: { email: row.email } })).leads.length > 0,
    })`;
    const resumed = await run(
      code,
      (request): EffectOutcome =>
        request.kind === 'http' && request.method === 'GET'
          ? { ok: true, value: { leads: [{ id: 'x' }] } }
          : { ok: true, value: { id: 'new' } },
      { input: { rows: rows(2) }, known: { items: { done: [], uncertain: ['lead0@example.com'], failed: [] } } },
    );
    expect(resumed.requests.map((r) => (r as { method: string }).method)).toEqual(['GET', 'POST']);
    expect(resumed.entries.map((e) => [e.key, e.status, e.reconciled])).toEqual([
      ['lead1@example.com', 'done', undefined],
      ['lead0@example.com', 'done', 'landed'],
    ]);

    // reconcile cannot tell (its GET fails): the item stays uncertain with that reason, and is not sent again.
    const unknown = await run(
      code,
      (request): EffectOutcome =>
        request.kind === 'http' && request.method === 'GET'
          ? {
              ok: false,
              error: { name: 'ApiError', message: 'crm: GET /leads failed after 3 attempt(s)', status: 503 },
            }
          : { ok: false, error: { name: 'UncertainCallError', message: 'may have landed' } },
      { input: { rows: rows(1) } },
    );
    expect(unknown.requests.map((r) => (r as { method: string }).method)).toEqual(['POST', 'GET']);
    expect(unknown.entries).toEqual([
      expect.objectContaining({
        status: 'uncertain',
        error: expect.objectContaining({ name: 'ApiError', status: 503 }),
      }),
    ]);
    expect(unknown.outcome).toMatchObject({ kind: 'returned', value: { done: 0, failed: 0, uncertain: 1 } });
  });

  it('refuses bad arguments, duplicate keys and a second index-keyed each() on one ledger', async () => {
    const cases: Array<[string, RegExp]> = [
      [`each('x', () => 1)`, /items must be an array; got string/],
      [`each([1], 5)`, /fn must be a function; got number/],
      [`each([1], () => 1, { concurrency: 0 })`, /concurrency must be a whole number from 1 to 1000; got 0/],
      [`each([1], () => 1, { maxFailures: 2.5 })`, /maxFailures must be a count/],
      [`each([1, 2], () => 1, { key: () => 'same' })`, /items 0 and 1 have the same key "same"/],
      [`each([1], () => 1, { key: () => ({}) })`, /must return a string or a number; for item 0 it returned object/],
      [
        `each([1], () => 1).then(() => each([2], () => 1))`,
        /already ran an each\(\) on the ledger "items" keyed by index/,
      ],
    ];
    for (const [call, message] of cases) {
      const { outcome } = await run(`async () => { await ${call}; }`, created);
      expect(outcome?.kind).toBe('threw');
      const error = (outcome as { error: { name: string; message: string; line?: number } }).error;
      expect(error.name).toBe('TypeError');
      expect(error.message).toMatch(message);
      expect(error.line).toBe(1);
    }
    const named = await run(
      `async () => [await each([1], () => 1), await each([2], () => 2, { name: 'second' })]`,
      created,
    );
    expect(named.outcome).toMatchObject({ kind: 'returned', value: [{ ledger: 'items' }, { ledger: 'second' }] });
  });

  it('reproduces the same entries when a new session replays the journal', async () => {
    const first = await run(IMPORT, validating, { input: { rows: rows(23, (i) => i === 4) } });
    // Replay all but the last round, then go live: the live report must carry what the original did.
    const k = first.rounds.length - 1;
    const { report } = await ScriptSession.open({
      job: job(IMPORT, { rows: rows(23, (i) => i === 4) }),
      providers: [{ name: 'crm' }],
      rounds: first.rounds.slice(0, k),
      now: 1_000 + k * 1_000,
    });
    expect(report.ledger).toEqual(first.reports[k].ledger);
  });

  it('in a dry run, reports the plan of each() and runs none of its items', async () => {
    const { report } = await ScriptSession.open({
      job: job(IMPORT, { rows: rows(10) }),
      providers: [{ name: 'crm' }],
      rounds: [],
      now: 1,
      preview: true,
      known: {
        items: {
          done: ['lead0@example.com', 'lead1@example.com', 'lead2@example.com'],
          uncertain: ['lead3@example.com'],
          failed: ['lead4@example.com', 'lead5@example.com'],
        },
      },
    });
    expect(report.effects).toEqual([]);
    // Not a stuck script: a dry run ends where each() planned.
    expect(report.outcome).toBeNull();
    expect(report.plans).toEqual([{ ledger: 'items', total: 10, skip: 3, retry: 3, reconcile: 0, new: 4 }]);
  });

  it('in a dry run of a resume, replays the journal up to where each() plans, and stops there', async () => {
    const code = `async () => {
      const rows = await crm.request({ method: 'GET', path: '/rows' });
      return each(rows, (row) => crm.request({ method: 'POST', path: '/leads', body: row }), { key: (row) => row.email });
    }`;
    const all = rows(5, (i) => i === 1);
    const first = await run(code, (request, call) =>
      request.kind === 'http' && request.method === 'GET' ? { ok: true, value: all } : validating(request, call),
    );
    expect(first.rounds).toHaveLength(2);
    const { report, adopted } = await ScriptSession.open({
      job: job(code),
      providers: [{ name: 'crm' }],
      rounds: first.rounds,
      now: 9_000,
      mode: 'adopt',
      preview: true,
      known: { items: { done: ['lead0@example.com', 'lead2@example.com'], uncertain: [], failed: ['bad-1'] } },
    });
    expect(adopted).toEqual({
      rounds: 1,
      divergence: 'round 2: each("items") starts here; its items run live',
      prefilled: [],
    });
    expect(report.plans).toEqual([{ ledger: 'items', total: 5, skip: 2, retry: 1, reconcile: 0, new: 2 }]);
    expect(report.effects).toEqual([]);
    expect(report.outcome).toBeNull();
  });

  it('handles 100,000 items in 100 rounds of 1,000 calls, every entry reported once (bench/ledger.ts runs 1,000,000)', async () => {
    const n = 100_000;
    let entries = 0;
    let calls = 0;
    let { session, report } = await ScriptSession.open({
      job: job(
        `async () => each(Array.from({ length: input.n }, (_, i) => 'k' + i), (key) => crm.request({ method: 'POST', path: '/x', body: { key } }), { key: (k) => k, concurrency: 1000 })`,
        { n },
        { maxEffectsPerRound: 1000 },
      ),
      providers: [{ name: 'crm' }],
      rounds: [],
      now: 1,
    });
    const ok: EffectOutcome = { ok: true, value: 1 };
    while (!report.outcome) {
      calls += report.effects.length;
      entries += report.ledger?.entries.length ?? 0;
      report = await session.deliver(
        report.effects.map(() => ok),
        2,
      );
    }
    entries += report.ledger?.entries.length ?? 0;
    expect(calls).toBe(n);
    expect(entries).toBe(n);
    expect(report.outcome).toEqual({
      kind: 'returned',
      value: { done: n, failed: 0, uncertain: 0, skipped: 0, ledger: 'items' },
    });
  }, 60_000);
});
