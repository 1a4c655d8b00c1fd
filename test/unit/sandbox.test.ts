/**
 * The script sandbox on its own (real isolated-vm, no Temporal): rounds, replay from a journal,
 * divergence, steps, determinism and the limits that end a script with a clear error.
 */
import { describe, expect, it, vi } from 'vitest';
import { effectLabel } from '../../core/effects.ts';
import { RunnableJob, type EffectOutcome, type ReplayRound, type RoundReport } from '../../core/journal.ts';
import { SandboxLimits } from '../../core/limits.ts';
import { SHEET_COLUMNS, sheetRow } from '../../demo-apis/sheets.ts';
import { LONG_STRING_CHARS, messageArguments, parseMessage } from '../../sandbox/guest/common.js';
import { effectKey, LARGE_ROUND_CHARS, ScriptSession } from '../../sandbox/session.ts';

function job(code: string, limits: Partial<SandboxLimits> = {}): RunnableJob {
  return RunnableJob.parse({ jobId: 'job-test', code, input: { n: 3 }, limits: SandboxLimits.parse(limits) });
}

/** Drives a session to the end like the workflow does, answering every call with `answer`, and returns the journal. */
async function runToEnd(code: string, answer: (i: number) => EffectOutcome, limits: Partial<SandboxLimits> = {}) {
  const rounds: ReplayRound[] = [];
  let now = 1_000;
  let { session, report } = await ScriptSession.open({
    job: job(code, limits),
    providers: [{ name: 'crm' }],
    rounds: [],
    now,
  });
  const reports: RoundReport[] = [report];
  let calls = 0;
  while (!report.outcome) {
    const outcomes = report.effects.map(() => answer(calls++));
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
  return { rounds, reports, outcome: report.outcome };
}

describe('script sandbox', () => {
  it('groups parallel calls into one round and delivers outcomes in order', async () => {
    const { rounds, outcome } = await runToEnd(
      `async () => Promise.all([1, 2, 3].map((i) => crm.request({ method: 'post', path: '/x/' + i, body: { i } })))`,
      (i) => ({ ok: true, value: i * 10 }),
    );
    expect(rounds).toHaveLength(1);
    expect(rounds[0].effects.map((e) => e.key)).toEqual(
      [1, 2, 3].map((i) => effectKey({ kind: 'http', provider: 'crm', method: 'POST', path: `/x/${i}`, body: { i } })),
    );
    expect(rounds[0].effects.map((e) => e.label)).toEqual(['crm: POST /x/1', 'crm: POST /x/2', 'crm: POST /x/3']);
    expect(outcome).toEqual({ kind: 'returned', value: [0, 10, 20] });
  });

  it('asks approve() as an effect: the answer resolves it, a denial rejects with a catchable ApprovalDeniedError', async () => {
    const code = `async () => {
      const yes = await approve('Import 100 leads?', { sample: [1, 2] }, { timeoutMs: 60000 });
      const no = await approve('And delete the old ones?').catch((e) => [e.name, e.by, e.note, e instanceof ApprovalDeniedError]);
      return [yes, no];
    }`;
    const { rounds, outcome } = await runToEnd(code, (i) =>
      i === 0
        ? { ok: true, value: { approved: true, by: 'alice', note: null } }
        : { ok: false, error: { name: 'ApprovalDeniedError', message: 'denied', body: { by: 'bob', note: 'no' } } },
    );
    expect(rounds.map((r) => r.effects[0].label)).toEqual([
      'approval: Import 100 leads?',
      'approval: And delete the old ones?',
    ]);
    expect(outcome).toEqual({
      kind: 'returned',
      value: [{ approved: true, by: 'alice', note: null }, ['ApprovalDeniedError', 'bob', 'no', true]],
    });
    const bad = await runToEnd(
      `async () => Promise.allSettled([approve(''), approve('ok', () => 1), approve('ok', null, { timeoutMs: -1 })]).then((r) => r.map((x) => x.reason.message))`,
      () => ({ ok: true }),
    );
    expect(bad.outcome).toEqual({
      kind: 'returned',
      value: [
        'approve(question, details): question must be a non-empty string of at most 2,000 characters',
        expect.stringMatching(/the details of approve\(\) is not JSON-serializable/),
        expect.stringMatching(/timeoutMs must be a number of milliseconds between 1 and one year; got -1/),
      ],
    });
  });

  it('replays a journal without re-running steps, then goes live where the journal ends', async () => {
    const code = `async () => {
      const seed = await step('seed', () => Math.random());
      const a = await crm.request({ method: 'GET', path: '/a', query: { seed } });
      const b = await crm.request({ method: 'GET', path: '/b' });
      return { seed, a, b, now: Date.now() };
    }`;
    const first = await runToEnd(code, (i) => ({ ok: true, value: `answer ${i}` }));
    // Tamper with the recorded step value: replay must return it instead of computing a new one.
    const rounds = structuredClone(first.rounds);
    rounds[0].steps[0].json = '42';
    rounds[0].effects[0].key = effectKey({
      kind: 'http',
      provider: 'crm',
      method: 'GET',
      path: '/a',
      query: { seed: 42 },
    });
    const { report } = await ScriptSession.open({
      job: job(code),
      providers: [{ name: 'crm' }],
      rounds: rounds.slice(0, 1),
      now: 99_000,
    });
    expect(report.outcome).toBeNull();
    expect(report.effects).toEqual([{ kind: 'http', provider: 'crm', method: 'GET', path: '/b' }]);
    expect(report.steps).toEqual([]);
  });

  it('reports a divergence when the script asks for something else than the journal recorded', async () => {
    const first = await runToEnd(`async () => crm.request({ method: 'POST', path: '/leads', body: { v: 1 } })`, () => ({
      ok: true,
      value: 1,
    }));
    const { report } = await ScriptSession.open({
      job: job(`async () => crm.request({ method: 'POST', path: '/leads', body: { v: 2 } })`),
      providers: [{ name: 'crm' }],
      rounds: first.rounds,
      now: 5_000,
    });
    expect(report.outcome).toMatchObject({ kind: 'threw', error: { name: 'ReplayDivergenceError' } });
    expect((report.outcome as { error: { message: string } }).error.message).toMatch(
      /round 1, call 1: the journal has crm: POST \/leads with another request \(its body, query or arguments differ\)\. The script must/,
    );
  });

  it('makes the clock and randomness come from the journal', async () => {
    const code = `async () => { const t0 = Date.now(); const r = Math.random(); await sleep(10); return { t0, t1: new Date().getTime(), r }; }`;
    const a = await runToEnd(code, () => ({ ok: true }));
    const b = await runToEnd(code, () => ({ ok: true }));
    expect(a.outcome).toEqual(b.outcome);
    expect(a.outcome).toMatchObject({ value: { t0: 1_000, t1: 2_000 } });
  });

  it('keeps console output out of replays and caps its size', async () => {
    const { reports } = await runToEnd(
      `async () => { for (let i = 0; i < 100; i++) console.log('line ' + i, { i }); }`,
      () => ({ ok: true }),
      { maxLogBytes: 200 },
    );
    const last = reports.at(-1)!;
    expect(last.logs[0]).toBe('line 0 {"i":0}');
    expect(last.logs.join('').length).toBeLessThanOrEqual(200);
    expect(last.droppedLogs).toBeGreaterThan(80);
  });

  it('fails a step that waits on an API call, naming the step', async () => {
    const { outcome } = await runToEnd(
      `async () => step('fetch', () => crm.request({ method: 'GET', path: '/x' }))`,
      () => ({ ok: true }),
    );
    expect(outcome).toMatchObject({ kind: 'threw', error: { name: 'StepError' } });
    expect((outcome as { error: { message: string } }).error.message).toMatch(/step\("fetch"\)/);
  });

  it('fails a step whose value is not JSON, naming the step', async () => {
    const { outcome } = await runToEnd(`async () => step('parse', () => ({ f() {} }))`, () => ({ ok: true }));
    expect((outcome as { error: { message: string } }).error.message).toMatch(
      /the value of step\("parse"\) is not JSON-serializable/,
    );
  });

  it('ends an endless loop with a time-limit error', async () => {
    const { outcome } = await runToEnd(
      `async () => { await crm.request({ method: 'GET', path: '/x' }); for (;;) {} }`,
      () => ({ ok: true }),
      { roundTimeoutMs: 200 },
    );
    expect(outcome).toMatchObject({ kind: 'threw', error: { name: 'TimeLimitError' } });
  });

  it('ends a script that exhausts its memory with a memory-limit error', async () => {
    const { outcome } = await runToEnd(
      `async () => { const a = []; for (;;) a.push('x'.repeat(1e4) + a.length); }`,
      () => ({ ok: true }),
      { memoryMb: 16 },
    );
    expect(outcome).toMatchObject({ kind: 'threw', error: { name: 'MemoryLimitError' } });
  });

  it('refuses too many calls in one round and too large a result', async () => {
    const many = await runToEnd(
      `async () => Promise.all(Array.from({ length: 20 }, () => sleep(1)))`,
      () => ({ ok: true }),
      { maxEffectsPerRound: 10 },
    );
    expect(many.outcome).toMatchObject({ error: { name: 'EffectLimitError' } });
    const big = await runToEnd(`async () => 'x'.repeat(5000)`, () => ({ ok: true }), { maxResultBytes: 1000 });
    expect(big.outcome).toMatchObject({ error: { name: 'ResultTooLargeError' } });
  });

  it('reports a non-function script and validates request arguments inside the script', async () => {
    const notFn = await runToEnd(`42`, () => ({ ok: true }));
    expect(notFn.outcome).toMatchObject({
      error: { name: 'TypeError', message: expect.stringMatching(/must be a function expression/) },
    });
    const bad = await runToEnd(
      `async () => { const errs = []; for (const o of [null, { method: 'FETCH', path: '/' }, { path: 'x' }, { path: '/x', body: { f: () => 1 } }]) { try { await crm.request(o); } catch (e) { errs.push(e.message); } } return errs; }`,
      () => ({ ok: true }),
    );
    expect((bad.outcome as { value: string[] }).value).toEqual([
      'crm.request() takes an object: { method, path, query, body }',
      'crm.request(): method must be one of GET, POST, PUT, PATCH, DELETE, HEAD; got FETCH',
      'crm.request(): path must be a string starting with "/" relative to the provider\'s base URL; got "x"',
      'crm.request() body is not JSON-serializable: found a function at key "f"',
    ]);
  });

  it('gives errors thrown into the script a stack in script coordinates: the line that made the call', async () => {
    const code = [
      'async () => {',
      '  const lead = (id) =>',
      "    crm.request({ method: 'GET', path: '/leads/' + id });",
      '  await sleep(1);',
      '  const caught = await lead(7).catch((e) => e);',
      "  const refused = await crm.request({ method: 'FETCH', path: '/' }).catch((e) => e);",
      '  const info = (e) => ({ name: e.name, status: e.status, isApiError: e instanceof ApiError, stack: e.stack });',
      '  if (caught.status === 404) return [info(caught), info(refused)];',
      '  await lead(8);',
      '}',
    ].join('\n');
    const answers: EffectOutcome[] = [
      { ok: true },
      { ok: false, error: { name: 'ApiError', message: 'crm: GET /leads/7 answered 404', status: 404 } },
    ];
    const { outcome } = await runToEnd(code, (i) => answers[i]);
    expect((outcome as { value: unknown }).value).toEqual([
      {
        name: 'ApiError',
        status: 404,
        isApiError: true,
        stack: 'ApiError: crm: GET /leads/7 answered 404\n    at lead (script.js:3:9)\n    at script.js:5:24',
      },
      {
        name: 'TypeError',
        isApiError: false,
        stack:
          'TypeError: crm.request(): method must be one of GET, POST, PUT, PATCH, DELETE, HEAD; got FETCH\n    at script.js:6:29',
      },
    ]);

    // Uncaught, it ends the job at that line; a RequestError keeps its name.
    const refused = (id: number): EffectOutcome => ({
      ok: false,
      error: { name: 'RequestError', message: `crm: GET /leads/${id} matches no operation` },
    });
    const refusals: EffectOutcome[] = [{ ok: true }, refused(7), refused(8)];
    const uncaught = await runToEnd(code, (i) => refusals[i]);
    expect(uncaught.outcome).toEqual({
      kind: 'threw',
      error: {
        name: 'RequestError',
        message: 'crm: GET /leads/8 matches no operation',
        stack:
          'RequestError: crm: GET /leads/8 matches no operation\n    at lead (script.js:3:9)\n    at script.js:9:9',
        line: 3,
        column: 9,
      },
    });
  });

  it('gives the script no way to reach the host', async () => {
    const { outcome } = await runToEnd(
      `async () => {
        const probes = {};
        for (const [name, f] of Object.entries({
          process: () => typeof process, require: () => typeof require, ctor: () => this.constructor.constructor('return typeof process')(),
          fetch: () => typeof fetch, setTimeout: () => typeof setTimeout, controls: () => typeof __dcmControls + typeof __dcmInstall + typeof __dcmMain,
          gc: () => typeof gc + typeof globalThis.gc,
        })) { try { probes[name] = f(); } catch (e) { probes[name] = e.name; } }
        return probes;
      }`,
      () => ({ ok: true }),
    );
    expect((outcome as { value: unknown }).value).toEqual({
      process: 'undefined',
      require: 'undefined',
      ctor: 'undefined',
      fetch: 'undefined',
      setTimeout: 'undefined',
      controls: 'undefinedundefinedundefined',
      gc: 'undefinedundefined',
    });
  });

  it('tells the host once about a round that moved large values, and the script goes on after the collection', async () => {
    const { session } = await ScriptSession.open({
      job: job(`async () => {
        const big = await crm.request({ method: 'GET', path: '/export' });
        const n = big.length;
        const again = await crm.request({ method: 'GET', path: '/count' });
        return { n, again };
      }`),
      providers: [{ name: 'crm' }],
      rounds: [],
      now: 1_000,
    });
    expect(session.takeLargeRound()).toBe(false);
    const large = await session.deliver([{ ok: true, value: 'x'.repeat(LARGE_ROUND_CHARS) }], 2_000);
    expect(large.effects).toHaveLength(1);
    expect([session.takeLargeRound(), session.takeLargeRound()]).toEqual([true, false]);
    const end = await session.deliver([{ ok: true, value: 7 }], 3_000);
    expect(end.outcome).toEqual({ kind: 'returned', value: { n: LARGE_ROUND_CHARS, again: 7 } });
    expect(session.takeLargeRound()).toBe(false);
  });

  it('collects the sandbox once every few MB that small rounds moved through it, not after each', async () => {
    // Strings handed in live outside the sandbox's heap: V8, seeing a small heap, would keep them.
    const collect = vi.spyOn(ScriptSession.prototype as unknown as { collectGarbage(): void }, 'collectGarbage');
    try {
      const { session } = await ScriptSession.open({
        job: job(`async () => {
          let n = 0;
          for (;;) {
            const page = await crm.request({ method: 'GET', path: '/page' });
            if (page === null) return n;
            n += page.length;
          }
        }`),
        providers: [{ name: 'crm' }],
        rounds: [],
        now: 1_000,
      });
      const page = 'x'.repeat(100_000);
      for (let i = 0; i < 90; i++) {
        await session.deliver([{ ok: true, value: page }], 2_000 + i);
        expect(session.takeLargeRound()).toBe(false);
      }
      // 90 rounds of 100,000 characters and a little more: twice LARGE_ROUND_CHARS, not three times.
      expect(collect).toHaveBeenCalledTimes(2);
      const end = await session.deliver([{ ok: true, value: null }], 3_000);
      expect(end.outcome).toEqual({ kind: 'returned', value: 90 * page.length });
    } finally {
      collect.mockRestore();
    }
  });

  it('hands long strings into the sandbox whole, live and in a replay, wherever a message holds them', async () => {
    const code = `async () => {
      const text = await step('text', () => 'é"\\n'.repeat(${LONG_STRING_CHARS}));
      const [a, b] = await Promise.all([
        crm.request({ method: 'GET', path: '/a' }),
        crm.request({ method: 'GET', path: '/b' }),
      ]);
      const describe = (s) => s.length + ':' + s.slice(0, 3) + s.slice(-3);
      return {
        text: describe(text),
        body: describe(a.body),
        rows: a.rows.map((r) => (typeof r === 'string' && r.length > 99 ? describe(r) : r)),
        ownProto: Object.keys(a).includes('__proto__') && describe(a['__proto__']),
        plainProto: Object.getPrototypeOf(a) === Object.prototype,
        b: describe(b),
      };
    }`;
    const long = (c: string) => `<${c.repeat(LONG_STRING_CHARS)}>`;
    const answers: EffectOutcome[] = [
      {
        ok: true,
        // An own "__proto__" key, as JSON.parse makes one from a response.
        value: JSON.parse(`{"body":"${long('a')}","rows":["${long('r')}",1,"short"],"__proto__":"${long('p')}"}`),
      },
      { ok: true, value: long('b') },
    ];
    const expected = {
      text: `${3 * LONG_STRING_CHARS}:é"\né"\n`,
      body: `${LONG_STRING_CHARS + 2}:<aaaa>`,
      rows: [`${LONG_STRING_CHARS + 2}:<rrrr>`, 1, 'short'],
      ownProto: `${LONG_STRING_CHARS + 2}:<pppp>`,
      plainProto: true,
      b: `${LONG_STRING_CHARS + 2}:<bbbb>`,
    };
    const live = await runToEnd(code, (i) => answers[i]);
    expect(live.outcome).toEqual({ kind: 'returned', value: expected });
    // The step's JSON is replayed in the setup (first round) and the answers in a delivery.
    const replay = await ScriptSession.open({
      job: job(code),
      providers: [{ name: 'crm' }],
      rounds: live.rounds,
      now: 9_000,
    });
    expect(replay.report.outcome).toEqual({ kind: 'returned', value: expected });
  });

  it("passes a message's long strings beside its JSON, and only those", () => {
    const message = { a: [1, 'x'.repeat(LONG_STRING_CHARS)], b: { c: 'y'.repeat(LONG_STRING_CHARS - 1) } };
    const args = messageArguments(message);
    expect(args.slice(0, 2)).toEqual([JSON.stringify({ a: [1, null], b: message.b }), JSON.stringify([['a', 1]])]);
    expect(args.slice(2)).toEqual([message.a[1]]);
    expect(parseMessage(...(args as [string, string, ...string[]]))).toEqual(message);
    expect(messageArguments({ a: 'short' })).toEqual([JSON.stringify({ a: 'short' })]);
  });

  it('parses and writes RFC 4180 CSV: quotes, commas, newlines, CRLF, a BOM', async () => {
    const csv = '\ufeffname,company,note\r\n"Ada","Engines, Ltd","said ""hi""\nthen left"\r\nAlan,Bletchley,\r\n';
    const { outcome } = await runToEnd(
      `async () => { const rows = CSV.parse(input.csv); return { rows, back: CSV.parse(CSV.stringify(rows)), arrays: CSV.parse('a,b\\n1,2', { header: false }) }; }`.replace(
        'input.csv',
        JSON.stringify(csv),
      ),
      () => ({ ok: true }),
    );
    const rows = [
      { name: 'Ada', company: 'Engines, Ltd', note: 'said "hi"\nthen left' },
      { name: 'Alan', company: 'Bletchley', note: '' },
    ];
    expect((outcome as { value: unknown }).value).toEqual({
      rows,
      back: rows,
      arrays: [
        ['a', 'b'],
        ['1', '2'],
      ],
    });
    const bad = await runToEnd(`async () => CSV.parse('a\\n"unterminated')`, () => ({ ok: true }));
    expect(bad.outcome).toMatchObject({
      error: { message: 'CSV.parse: unterminated quoted field starting on line 2' },
    });
  });

  it('parses a 100,000-row CSV within one round', async () => {
    const lines = [SHEET_COLUMNS.join(',')];
    for (let i = 0; i < 100_000; i++) {
      const r = sheetRow('leads', i);
      lines.push(
        SHEET_COLUMNS.map((column) => r[column])
          .map((f) => (/[",]/.test(f) ? `"${f.replaceAll('"', '""')}"` : f))
          .join(','),
      );
    }
    const { outcome } = await runToEnd(
      `async () => { const csv = await crm.request({ method: 'GET', path: '/export.csv' }); const rows = CSV.parse(csv); return { n: rows.length, sample: rows[54321] }; }`,
      () => ({ ok: true, value: lines.join('\r\n') }),
    );
    expect((outcome as { value: unknown }).value).toEqual({ n: 100_000, sample: sheetRow('leads', 54321) });
  });

  it("records checkpoints as effects and exposes the previous attempt's checkpoint as resume", async () => {
    const code = `async () => { const from = resume ? resume.next : 0; await checkpoint({ next: from + 5 }); return { from }; }`;
    const fresh = await runToEnd(code, () => ({ ok: true }));
    expect(fresh.rounds[0].effects[0].label).toBe('checkpoint');
    expect(fresh.outcome).toEqual({ kind: 'returned', value: { from: 0 } });
    const { report } = await ScriptSession.open({
      job: { ...job(code), resume: { next: 5 } },
      providers: [],
      rounds: [],
      now: 1,
    });
    expect(report.effects).toEqual([{ kind: 'checkpoint', state: { next: 10 } }]);
    const big = await runToEnd(`async () => checkpoint({ rows: 'x'.repeat(300000) })`, () => ({ ok: true }));
    expect(big.outcome).toMatchObject({
      error: { message: expect.stringMatching(/^checkpoint\(state\): the state is \d+ bytes; the limit is 262144/) },
    });
  });

  it('caps step values, naming the step', async () => {
    const { outcome } = await runToEnd(`async () => step('all rows', () => 'x'.repeat(5000))`, () => ({ ok: true }), {
      maxStepBytes: 1000,
    });
    expect((outcome as { error: { message: string } }).error.message).toMatch(
      /^the value of step\("all rows"\) is 5002 bytes; the limit is 1000/,
    );
  });

  it('adopts a previous journal as far as new code agrees, prefilling the agreeing calls of the first divergent round', async () => {
    const v1 = `async () => { const a = await crm.request({ method: 'GET', path: '/a' }); const r = await Promise.all([crm.request({ method: 'POST', path: '/x', body: 1 }), crm.request({ method: 'POST', path: '/y', body: 1 })]); throw new Error('bug after ' + a + r); }`;
    const first = await runToEnd(v1, (i) => ({ ok: true, value: i }));
    expect(first.rounds).toHaveLength(2);
    const v2 = v1
      .replace("path: '/y', body: 1", "path: '/y', body: 2")
      .replace("throw new Error('bug after ' + a + r)", 'return [a, r]');
    const { report, adopted } = await ScriptSession.open({
      job: job(v2),
      providers: [{ name: 'crm' }],
      rounds: first.rounds,
      now: 9_000,
      mode: 'adopt',
    });
    expect(adopted).toMatchObject({
      rounds: 1,
      divergence:
        'round 2, call 2: the journal has crm: POST /y with another request (its body, query or arguments differ); the new code runs live from here',
    });
    expect(adopted!.prefilled).toEqual([{ ok: true, value: 1 }, undefined]);
    expect(report.effects.map((e) => (e.kind === 'http' ? e.body : null))).toEqual([1, 2]);

    const same = await ScriptSession.open({
      job: job(v1.replace("throw new Error('bug after ' + a + r)", 'return [a, r]')),
      providers: [{ name: 'crm' }],
      rounds: first.rounds,
      now: 9_000,
      mode: 'adopt',
    });
    expect(same.adopted).toMatchObject({ rounds: 2, divergence: null });
    expect(same.report.outcome).toEqual({ kind: 'returned', value: [0, [1, 2]] });
  });
});
