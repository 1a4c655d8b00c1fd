/**
 * The escape and abuse corpus: scripts written to break out of the sandbox, corrupt the host or
 * starve the worker. Each attempt must fail safely (or be harmless), and afterwards a normal script
 * must still work. First against script sessions directly (real isolated-vm), then a selection
 * through a real worker on a real Temporal server, with a real HTTP API that must see nothing odd.
 */
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { effectLabel } from '../../core/effects.ts';
import { SandboxLimits } from '../../core/limits.ts';
import {
  RunnableJob,
  type EffectOutcome,
  type ReplayRound,
  type RoundReport,
  type ScriptOutcome,
} from '../../core/journal.ts';
import { effectKey, ScriptSession } from '../../sandbox/session.ts';
import { startInProcessStack, testConfig, writeOpenApiSpec, type InProcessStack } from '../harness.ts';

const LIMITS = { memoryMb: 64, roundTimeoutMs: 1_000 };

/** Drives a session like the workflow does, answering every call with `answer`; returns every report. */
async function run(
  code: string,
  answer: (request: RoundReport['effects'][number]) => EffectOutcome = () => ({ ok: true, value: 'ok' }),
) {
  const job = RunnableJob.parse({ jobId: `job-corpus-${Math.random()}`, code, limits: SandboxLimits.parse(LIMITS) });
  let { session, report } = await ScriptSession.open({ job, providers: [{ name: 'crm' }], rounds: [], now: 1_000 });
  const reports = [report];
  const rounds: ReplayRound[] = [];
  while (!report.outcome) {
    const outcomes = report.effects.map(answer);
    rounds.push({
      now: 1_000,
      steps: report.steps,
      effects: report.effects.map((r, i) => ({ key: effectKey(r), label: effectLabel(r), outcome: outcomes[i] })),
    });
    report = await session.deliver(outcomes, 2_000);
    reports.push(report);
  }
  return { outcome: report.outcome, reports };
}

const returned = (outcome: ScriptOutcome) =>
  outcome.kind === 'returned' ? outcome.value : expect.fail(`the script threw: ${JSON.stringify(outcome)}`);
const threw = (outcome: ScriptOutcome) =>
  outcome.kind === 'threw' ? outcome.error : expect.fail(`the script returned: ${JSON.stringify(outcome)}`);

/** The host realm is untouched, and a new sandbox runs a normal script (with a call) to the end. */
async function expectHealthy(): Promise<void> {
  expect(Object.getOwnPropertyNames(Object.prototype).sort()).toEqual(HOST_OBJECT_PROTOTYPE);
  expect(({} as Record<string, unknown>).polluted).toBeUndefined();
  const { outcome } = await run(
    `async () => { const r = await crm.request({ method: 'GET', path: '/ping' }); return [r, typeof polluted, ({}).polluted]; }`,
  );
  expect(returned(outcome)).toEqual(['ok', 'undefined', null]);
}
const HOST_OBJECT_PROTOTYPE = Object.getOwnPropertyNames(Object.prototype).sort();

describe('escape corpus: script sessions', () => {
  it('constructor chains reach only the sandbox, which holds no host objects', async () => {
    const { outcome } = await run(`async () => {
      const viaThis = this.constructor.constructor('return typeof process')();
      const viaClient = crm.request.constructor('return this')();
      const viaAsync = await (async () => {}).constructor('return typeof require + typeof module + typeof Buffer')();
      const viaError = new Error().constructor.constructor('return typeof process')();
      return { viaThis, viaAsync, viaError, sameGlobal: viaClient === globalThis, globals: Object.getOwnPropertyNames(globalThis) };
    }`);
    const value = returned(outcome) as {
      viaThis: string;
      viaAsync: string;
      viaError: string;
      sameGlobal: boolean;
      globals: string[];
    };
    expect(value).toMatchObject({
      viaThis: 'undefined',
      viaAsync: 'undefinedundefinedundefined',
      viaError: 'undefined',
      sameGlobal: true,
    });
    for (const name of [
      'process',
      'require',
      'module',
      'Buffer',
      'ivm',
      '_ivm',
      'fetch',
      'setTimeout',
      'WebAssembly',
      '__dcmControls',
      '__dcmInstall',
      '__dcmMain',
    ]) {
      expect(value.globals).not.toContain(name);
    }
    await expectHealthy();
  });

  it('Error.prepareStackTrace and stack tricks see only sandbox frames, and hostile error getters stay in the sandbox', async () => {
    const frames = await run(`async () => {
      Error.prepareStackTrace = (e, callSites) => callSites.map((c) => {
        const f = c.getFunction();
        return [String(c.getFileName()), f === undefined ? 'hidden' : f instanceof Function ? 'sandbox function' : 'foreign'];
      });
      const probe = {};
      Error.captureStackTrace(probe);
      return probe.stack;
    }`);
    const callSites = returned(frames.outcome) as string[][];
    expect(callSites.length).toBeGreaterThan(0);
    for (const [file, fn] of callSites) {
      expect(file).toMatch(/^(script\.js|dcm-runtime\.js|undefined)$/); // no host frame
      // The runtime is strict code, so its frames never hand out its functions; the script's own are sandbox functions.
      expect(fn).toBe(file === 'script.js' ? 'sandbox function' : 'hidden');
    }
    // An error whose message getter never returns: read inside the sandbox, so the round's time limit ends it.
    const looping = await run(
      `async () => { const e = new Error('x'); Object.defineProperty(e, 'message', { get() { for (;;) {} } }); throw e; }`,
    );
    expect(threw(looping.outcome)).toMatchObject({ name: 'TimeLimitError' });
    const thrownProxy = await run(
      `async () => { throw new Proxy({}, { get() { throw new Error('trap'); }, getPrototypeOf() { throw new Error('trap'); } }); }`,
    );
    expect(threw(thrownProxy.outcome).message).toMatch(/trap/);
    await expectHealthy();
  });

  it('Proxies and getters on values handed back run inside the sandbox, once, and the host gets plain data', async () => {
    const { outcome, reports } = await run(`async () => {
      let reads = 0;
      const body = { get secret() { reads++; if (reads > 1) for (;;) {} return 'read ' + reads; } };
      const proxy = new Proxy({}, { ownKeys: () => ['a'], getOwnPropertyDescriptor: () => ({ value: reads, enumerable: true, configurable: true }), get: () => { reads += 100; return reads; } });
      await crm.request({ method: 'POST', path: '/x', body: { body, proxy } });
      return new Proxy([1, 2], { get: (t, k) => (k === 'length' ? 2 : k === 'toJSON' ? undefined : 'trapped ' + String(k)) });
    }`);
    const sent = (reports[0].effects[0] as unknown as { body: { body: unknown; proxy: unknown } }).body;
    // JSON.stringify asks the proxy for toJSON, then for a: two reads, both in the sandbox.
    expect(sent).toEqual({ body: { secret: 'read 1' }, proxy: { a: 201 } });
    expect(Object.getPrototypeOf(sent)).toBe(Object.prototype); // a host object built by JSON.parse, not a guest one
    expect(returned(outcome)).toEqual(['trapped 0', 'trapped 1']);
    const endless = await run(`async () => new Proxy({}, { ownKeys() { for (;;) {} } })`);
    expect(threw(endless.outcome)).toMatchObject({ name: 'TimeLimitError' });
    await expectHealthy();
  });

  it('__proto__ and constructor.prototype in returned values and request bodies pollute nothing', async () => {
    const { outcome, reports } = await run(`async () => {
      const evil = JSON.parse('{"__proto__": {"polluted": "yes"}, "constructor": {"prototype": {"polluted": "yes"}}, "ok": 1}');
      Object.prototype.polluted = 'in the sandbox only';
      await crm.request({ method: 'POST', path: '/x', body: evil, query: JSON.parse('{"__proto__": "x", "q": "1"}') });
      return evil;
    }`);
    const effect = reports[0].effects[0] as { body: Record<string, unknown>; query: Record<string, unknown> };
    expect(effect.body).toEqual({ constructor: { prototype: { polluted: 'yes' } }, ok: 1 });
    expect(Object.getPrototypeOf(effect.body)).toBe(Object.prototype);
    expect(effect.query).toEqual({ q: '1' });
    expect(returned(outcome)).toEqual({ constructor: { prototype: { polluted: 'yes' } }, ok: 1 });
    await expectHealthy();
  });

  it('SharedArrayBuffer + Atomics.wait blocks only until the round time limit', async () => {
    const { outcome } = await run(`async () => Atomics.wait(new Int32Array(new SharedArrayBuffer(8)), 0, 0, 1e9)`);
    expect(threw(outcome)).toMatchObject({ name: 'TimeLimitError' });
    await expectHealthy();
  });

  it('WebAssembly is not there: its memory would grow outside the isolate memory limit', async () => {
    const { outcome } = await run(
      `async () => { const m = new WebAssembly.Memory({ initial: 1, maximum: 65536 }); m.grow(16383); return m.buffer.byteLength; }`,
    );
    expect(threw(outcome)).toMatchObject({ name: 'ReferenceError', message: 'WebAssembly is not defined' });
    const buffers = await run(`async () => { const all = []; for (;;) all.push(new ArrayBuffer(16 * 1024 * 1024)); }`);
    expect(threw(buffers.outcome)).toMatchObject({ name: 'RangeError', message: 'Array buffer allocation failed' });
    await expectHealthy();
  });

  it('eval and new Function loops end at the round time limit; eval of enormous code fails', async () => {
    expect(threw((await run(`async () => { for (;;) eval('1 + 1'); }`)).outcome)).toMatchObject({
      name: 'TimeLimitError',
    });
    expect(
      threw((await run(`async () => { for (;;) new Function('return ' + Math.random())(); }`)).outcome),
    ).toMatchObject({ name: 'TimeLimitError' });
    const huge = threw((await run(`async () => eval('1+'.repeat(5e7) + '1')`)).outcome);
    expect(huge).toMatchObject({
      name: 'EvalError',
      message: 'Code generation from strings disallowed for this context',
    });
    await expectHealthy();
  });

  it('dynamic import() is refused', async () => {
    const { outcome } = await run(`async () => {
      const out = [];
      for (const m of ['node:fs', 'fs', 'data:text/javascript,export default 1', './session.ts']) {
        try { await import(m); out.push('imported ' + m); } catch (e) { out.push(String(e)); }
      }
      return out;
    }`);
    expect(returned(outcome)).toEqual(Array(4).fill('Error: Not supported'));
    await expectHealthy();
  });

  it('microtask starvation (while (true) await null) ends at the round time limit', async () => {
    expect(threw((await run(`async () => { while (true) await null; }`)).outcome)).toMatchObject({
      name: 'TimeLimitError',
    });
    const afterCall = await run(
      `async () => { await crm.request({ method: 'GET', path: '/x' }); for (;;) await Promise.resolve(); }`,
    );
    expect(threw(afterCall.outcome)).toMatchObject({ name: 'TimeLimitError' });
    await expectHealthy();
  });

  it('deep recursion and deeply nested values fail the script, not the host', async () => {
    expect(threw((await run(`async () => { const f = (n) => f(n + 1) + 1; return f(0); }`)).outcome)).toMatchObject({
      name: 'RangeError',
    });
    const nested = threw(
      (await run(`async () => { let x = []; for (let i = 0; i < 1e5; i++) x = [x]; return x; }`)).outcome,
    );
    // On a loaded machine building and serializing 100,000 levels can outlast the 1 s round limit
    // first (seen in CI at load 15): then the time limit ends the script, the host still unharmed.
    if (nested.name === 'TimeLimitError') expect(nested.message).toMatch(/for more than 1000 ms/);
    else expect(nested.message).toMatch(/not JSON-serializable: Maximum call stack size exceeded/);
    // Nested just shallow enough for the sandbox to serialize, too deep for the host's validator.
    const report = threw((await run(`async () => JSON.parse('['.repeat(5000) + ']'.repeat(5000))`)).outcome);
    expect(report).toMatchObject({ name: 'SandboxReportError', message: expect.stringMatching(/nested too deeply/) });
    await expectHealthy();
  });

  it('huge strings and arrays end in a range or memory error', async () => {
    expect(threw((await run(`async () => { let s = 'x'; for (;;) s += s; }`)).outcome)).toMatchObject({
      name: 'RangeError',
      message: 'Invalid string length',
    });
    expect(threw((await run(`async () => new Array(2 ** 32)`)).outcome)).toMatchObject({ name: 'RangeError' });
    expect(
      threw((await run(`async () => { const a = []; for (;;) a.push(new Array(1e6).fill(a.length)); }`)).outcome),
    ).toMatchObject({ name: 'MemoryLimitError' });
    expect(
      threw((await run(`async () => { const a = []; for (;;) a.push({ n: a.length, s: String(a.length) }); }`)).outcome)
        .name,
    ).toMatch(/MemoryLimitError|TimeLimitError/);
    expect(threw((await run(`async () => new Array(1e8).fill(1.5).length`)).outcome).name).toMatch(
      /MemoryLimitError|RangeError/,
    );
    const bigResult = threw((await run(`async () => 'x'.repeat(2 ** 22)`)).outcome);
    expect(bigResult).toMatchObject({ name: 'ResultTooLargeError' });
    await expectHealthy();
  });

  it('a promise that never settles while nothing is pending is detected, not a hang', async () => {
    const { outcome } = await run(`async () => { await new Promise(() => {}); }`);
    expect(threw(outcome)).toMatchObject({
      name: 'StuckScriptError',
      message: expect.stringMatching(/^The script is waiting on nothing/),
    });
    const later = await run(
      `async () => { await crm.request({ method: 'GET', path: '/x' }); await new Promise(() => {}); }`,
    );
    expect(threw(later.outcome)).toMatchObject({ name: 'StuckScriptError' });
    await expectHealthy();
  });

  it("replacing the runtime's built-ins breaks only the script's own report, which the host refuses", async () => {
    const hijacked = await run(
      `async () => { Array.prototype.toJSON = function () { return 'nope'; }; await crm.request({ method: 'GET', path: '/x' }); }`,
    );
    expect(threw(hijacked.outcome)).toMatchObject({
      name: 'SandboxReportError',
      message: expect.stringMatching(/not shaped like a report/),
    });
    // JSON was captured before the script ran: replacing it changes nothing the runtime does.
    const json = await run(
      `async () => { JSON.parse = () => ({ outcomes: [] }); JSON.stringify = () => '{}'; return crm.request({ method: 'GET', path: '/x' }); }`,
    );
    expect(returned(json.outcome)).toBe('ok');
    // A then() that drops callbacks loses the script's own completion: its job fails, nothing else.
    const then = await run(
      `async () => { Promise.prototype.then = function () { return this; }; return crm.request({ method: 'GET', path: '/x' }); }`,
    );
    expect(threw(then.outcome)).toMatchObject({ name: 'StuckScriptError' });
    const frozen = await run(
      `async () => { crm = null; delete globalThis.crm; Object.defineProperty(globalThis, 'step', { value: 1 }).x; return typeof crm.request; }`,
    );
    expect(threw(frozen.outcome)).toMatchObject({ name: 'TypeError', message: 'Cannot redefine property: step' });
    const overwritten = await run(`async () => { crm = null; delete globalThis.crm; return typeof crm.request; }`);
    expect(returned(overwritten.outcome)).toBe('function');
    await expectHealthy();
  });

  it('sandboxes share nothing: what one script leaves on its globals, the next never sees', async () => {
    await run(
      `async () => { globalThis.leak = 'secret'; Object.prototype.polluted = 'yes'; Array.prototype.push = () => 0; return 1; }`,
    );
    const { outcome } = await run(`async () => [typeof leak, ({}).polluted === undefined, [].push(1)]`);
    expect(returned(outcome)).toEqual(['undefined', true, 1]);
  });
});

describe('escape corpus: through a real worker', () => {
  let stack: InProcessStack;
  let api: Server;
  let evil: Server;
  const apiBodies: string[] = [];
  let evilHits = 0;

  const listen = async (server: Server) => {
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    return `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  };

  beforeAll(async () => {
    api = createServer((req, res) => {
      let body = '';
      req.on('data', (d) => (body += d));
      req.on('end', () => {
        apiBodies.push(body);
        res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ received: body.length }));
      });
    });
    evil = createServer((_req, res) => {
      evilHits++;
      res.end('stolen');
    });
    const apiUrl = await listen(api);
    const evilUrl = await listen(evil);
    const openapi = writeOpenApiSpec(['POST /ping', 'POST /leads', 'GET /innocent']);
    stack = await startInProcessStack(testConfig({ providers: { crm: { openapi, baseUrl: apiUrl } }, limits: LIMITS }));
    process.env.DCM_CORPUS_EVIL_URL = evilUrl;
  });

  afterAll(async () => {
    await stack?.close();
    api?.close();
    evil?.close();
  });

  async function healthyJob(): Promise<void> {
    const view = await stack.jobs.execute({
      code: `async () => (await crm.request({ method: 'POST', path: '/ping', body: { n: 1 } })).received`,
      waitSeconds: 30,
    });
    expect(view).toMatchObject({ status: 'completed', result: 7 });
    expect(({} as Record<string, unknown>).polluted).toBeUndefined();
    expect(Object.getOwnPropertyNames(Object.prototype).sort()).toEqual(HOST_OBJECT_PROTOTYPE);
  }

  it('constructor chains, memory bombs, starvation and a stuck promise end their jobs; the worker carries on', async () => {
    const cases: Array<[string, string | RegExp]> = [
      [`async () => this.constructor.constructor('return typeof process')()`, 'undefined'],
      [`async () => { const a = []; for (;;) a.push(new Array(1e6).fill(a.length)); }`, /^MemoryLimitError/],
      [`async () => { while (true) await null; }`, /^TimeLimitError/],
      [`async () => { await new Promise(() => {}); }`, /^StuckScriptError/],
      [`async () => new WebAssembly.Memory({ initial: 1 })`, /^ReferenceError/],
      [`async () => Atomics.wait(new Int32Array(new SharedArrayBuffer(8)), 0, 0, 1e9)`, /^TimeLimitError/],
    ];
    const views = await Promise.all(cases.map(([code]) => stack.jobs.execute({ code, waitSeconds: 60 })));
    views.forEach((view, i) => {
      const want = cases[i][1];
      if (typeof want === 'string') expect(view).toMatchObject({ status: 'completed', result: want });
      else expect(`${view.error?.name}: ${view.error?.message}`).toMatch(want);
    });
    await healthyJob();
  });

  it('__proto__ keys in request bodies and results reach neither the worker nor the API as prototypes', async () => {
    apiBodies.length = 0;
    const view = await stack.jobs.execute({
      code: `async () => {
        const evil = JSON.parse('{"__proto__": {"polluted": "yes"}, "constructor": {"prototype": {"polluted": "yes"}}, "ok": 1}');
        const r = await crm.request({ method: 'POST', path: '/leads', body: evil });
        return [evil, r];
      }`,
      waitSeconds: 30,
    });
    const sanitized: Record<string, unknown> = { constructor: { prototype: { polluted: 'yes' } }, ok: 1 };
    expect(view.result).toEqual([sanitized, { received: expect.any(Number) }]);
    expect(JSON.parse(apiBodies[0])).toEqual(sanitized);
    await healthyJob();
  });

  it('a forged report asking for another host is refused by the worker: nothing reaches it', async () => {
    // The script rewrites how the runtime serializes its report, so the effect skips the sandbox's own path checks.
    const targets = [
      `${process.env.DCM_CORPUS_EVIL_URL}/steal`,
      `//${new URL(process.env.DCM_CORPUS_EVIL_URL!).host}/steal`,
      '@127.0.0.1/steal',
      '/../../steal',
      '/%2e%2e/steal',
    ];
    const view = await stack.jobs.execute({
      code: `async () => {
        const targets = ${JSON.stringify(targets)};
        let forged = 0;
        Object.defineProperty(Object.prototype, 'toJSON', { configurable: true, value: function () {
          if (Array.isArray(this.effects) && 'droppedLogs' in this && this.effects.length > 0 && forged++ === 0) {
            return { ...this, effects: targets.map((path) => ({ kind: 'http', provider: 'crm', method: 'GET', path })) };
          }
          return this;
        } });
        const settled = await Promise.allSettled(targets.map(() => crm.request({ method: 'GET', path: '/innocent' })));
        delete Object.prototype.toJSON;
        return settled.map((s) => s.status + ': ' + (s.reason ? s.reason.message : s.value));
      }`,
      waitSeconds: 30,
    });
    expect(view.status).toBe('completed');
    const results = view.result as string[];
    expect(results).toHaveLength(targets.length);
    // Refused on the worker: by the spec check (no such operation) or by the base-URL confinement itself.
    for (const r of results)
      expect(r).toMatch(
        /^rejected: crm: GET .*(matches no operation of the provider's spec|refused: path .*must be a plain absolute path)/,
      );
    expect(evilHits).toBe(0);
    await healthyJob();
  });
});
