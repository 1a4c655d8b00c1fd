/**
 * The `search` tool's sandbox: one warm isolate holding every provider's operations as the frozen
 * global `spec`, running an agent's search function against it.
 *
 * The specs are copied in once, as JSON. Everything a search could change for the next one is
 * frozen: the spec, globalThis and the builtins (prototypes included). Values cross the boundary as
 * JSON strings only; the host reads each search's outcome after isolated-vm has drained the
 * microtask queue, so an async search has settled by then or never will (there is no I/O here).
 */
import ivm from 'isolated-vm';
import type { ProviderSpec } from '../providers/spec.ts';
import { compileUserFunction, createIsolate, sandboxFailure } from './isolate.ts';

const RUNTIME_FILENAME = 'dcm-search-runtime.js';

// Runs inside the isolate. install() returns the controls; seal() removes the install globals and
// freezes everything. Builtins needed after sealing are safe to use directly: they are frozen too.
const RUNTIME_SOURCE = String.raw`
globalThis.__dcmSearchInstall = function install(specsJson) {
  'use strict';
  const specs = JSON.parse(specsJson);
  const providers = {};
  const operations = [];
  const tools = [];
  for (const s of specs) {
    providers[s.provider] = s.tools
      ? { title: s.title, description: s.description, tools: s.tools.length }
      : { title: s.title, description: s.description, version: s.version, operations: s.operations.length };
    for (const op of s.operations) operations.push(op);
    for (const tool of s.tools || []) tools.push({ provider: s.provider, ...tool });
  }
  const spec = { providers, operations, tools };
  freezeData(spec);
  Object.defineProperty(globalThis, 'spec', { value: spec, enumerable: true, writable: false, configurable: false });

  // JSON data holds only plain objects and arrays, so own values are all there is to freeze.
  function freezeData(root) {
    const stack = [root];
    while (stack.length) {
      const value = stack.pop();
      Object.freeze(value);
      for (const child of Array.isArray(value) ? value : Object.values(value)) {
        if (child !== null && typeof child === 'object') stack.push(child);
      }
    }
  }

  // Assigning e.g. this.name in an Error subclass, or obj.toString, must still work once the
  // prototypes are frozen: such properties become accessors that define the property on the
  // instance instead (without this, a frozen inherited property silently blocks the assignment).
  function allowOverride(proto, keys) {
    for (const key of keys) {
      const desc = Object.getOwnPropertyDescriptor(proto, key);
      if (!desc || !('value' in desc)) continue;
      const value = desc.value;
      Object.defineProperty(proto, key, {
        get() { return value; },
        set(v) {
          if (this === proto) throw new TypeError('Cannot assign to ' + String(key) + ': the builtins are frozen so that searches cannot affect each other');
          Object.defineProperty(this, key, { value: v, writable: true, enumerable: true, configurable: true });
        },
        enumerable: desc.enumerable,
        configurable: false,
      });
    }
  }

  function harden(roots) {
    const seen = new Set([spec]);
    const stack = roots.slice();
    while (stack.length) {
      const value = stack.pop();
      if (value === null || (typeof value !== 'object' && typeof value !== 'function') || seen.has(value)) continue;
      seen.add(value);
      Object.freeze(value);
      stack.push(Object.getPrototypeOf(value));
      for (const key of Reflect.ownKeys(value)) {
        const desc = Object.getOwnPropertyDescriptor(value, key);
        if ('value' in desc) stack.push(desc.value);
        else stack.push(desc.get, desc.set);
      }
    }
  }

  function seal() {
    delete globalThis.__dcmSearchInstall;
    delete globalThis.__dcmSearch;
    // WebAssembly memory is allocated outside the isolate's heap, so the memory limit would not hold it.
    delete globalThis.WebAssembly;
    allowOverride(Object.prototype, ['constructor', 'toString', 'toLocaleString', 'valueOf', 'hasOwnProperty', 'isPrototypeOf', 'propertyIsEnumerable']);
    allowOverride(Function.prototype, ['constructor', 'toString']);
    allowOverride(Array.prototype, ['constructor', 'toString']);
    for (const E of [Error, TypeError, RangeError, SyntaxError, ReferenceError, EvalError, URIError]) {
      allowOverride(E.prototype, ['constructor', 'name', 'message', 'toString']);
    }
    // Intrinsics that no global names, reached through instances of them.
    const unnamed = [
      function* () {}, async function () {}, async function* () {}, (function* () {})(), (async function* () {})(),
      [][Symbol.iterator](), new Map()[Symbol.iterator](), new Set()[Symbol.iterator](), ''[Symbol.iterator](), /x/[Symbol.matchAll](''),
      [].values().map((x) => x),
    ];
    harden([globalThis, ...unnamed]);
  }

  // ---- one search at a time: run(fn), then take() the outcome [kind, text] ------------------------
  let outcome = null;
  // Only the current search may set the outcome, whatever a timed-out one left queued.
  let current = 0;

  function toJson(value, what) {
    let text;
    try {
      text = JSON.stringify(value, (key, v) => {
        const type = typeof v;
        if (type === 'function' || type === 'symbol' || type === 'bigint') {
          throw new TypeError(what + ' is not JSON-serializable: found a ' + type + ' at ' + (key === '' ? 'the top level' : 'key "' + key + '"'));
        }
        return v;
      });
    } catch (e) {
      if (e instanceof TypeError && String(e.message).startsWith(what)) throw e;
      throw new TypeError(what + ' is not JSON-serializable: ' + (e && e.message));
    }
    return text === undefined ? 'null' : text;
  }

  function resultOf(value) {
    try {
      return ['ok', toJson(value, 'the search result')];
    } catch (e) {
      return ['invalid', e.message + '. Return plain data: objects, arrays, strings, numbers, booleans and null.'];
    }
  }

  function errorOf(e) {
    try {
      if (e instanceof Error) {
        const frame = /script\.js:(\d+):(\d+)/.exec(String(e.stack));
        return ['threw', JSON.stringify({ name: String(e.name), message: String(e.message), line: frame ? Number(frame[1]) : undefined, column: frame ? Number(frame[2]) : undefined })];
      }
      let message;
      try {
        message = typeof e === 'string' ? e : JSON.stringify(e);
      } catch {
        message = String(e);
      }
      return ['threw', JSON.stringify({ name: '', message: message })];
    } catch {
      return ['threw', JSON.stringify({ name: '', message: '(a value that cannot be read)' })];
    }
  }

  function run(fn) {
    const id = ++current;
    outcome = null;
    if (typeof fn !== 'function') {
      outcome = ['invalid', 'The search code must be a function expression such as async () => spec.operations.length; it evaluated to ' + (fn === null ? 'null' : typeof fn) + '.'];
      return;
    }
    let value;
    try {
      value = fn();
    } catch (e) {
      outcome = errorOf(e);
      return;
    }
    Promise.resolve(value).then(
      (v) => { if (id === current) outcome = resultOf(v); },
      (e) => { if (id === current) outcome = errorOf(e); },
    );
  }

  function take() {
    const taken = outcome;
    outcome = null;
    return taken === null ? ['pending', ''] : taken;
  }

  return { run, take, seal };
};
`;

/** What a search did wrong, or the sandbox limit it hit (name TimeLimitError / MemoryLimitError). */
export class SearchError extends Error {
  readonly line: number | undefined;
  readonly column: number | undefined;
  constructor(name: string, message: string, line?: number, column?: number) {
    super(message);
    this.name = name;
    this.line = line;
    this.column = column;
  }
}

interface Warm {
  isolate: ivm.Isolate;
  context: ivm.Context;
  run: ivm.Reference;
  take: ivm.Reference;
}

export class SpecSearch {
  private readonly specsJson: string;
  private readonly limits: { memoryMb: number; timeoutMs: number };
  private warm: Warm | undefined;
  /** Searches share the isolate's outcome slot, so they run one after another. */
  private queue: Promise<unknown> = Promise.resolve();
  private disposed = false;

  private constructor(specsJson: string, limits: { memoryMb: number; timeoutMs: number }) {
    this.specsJson = specsJson;
    this.limits = limits;
  }

  static async create(
    specs: ProviderSpec[],
    options: { memoryMb?: number; timeoutMs?: number } = {},
  ): Promise<SpecSearch> {
    const search = new SpecSearch(JSON.stringify(specs), {
      memoryMb: options.memoryMb ?? 512,
      timeoutMs: options.timeoutMs ?? 5000,
    });
    search.warm = await search.boot();
    return search;
  }

  /** Runs `code` (an async arrow function expression, e.g. `async () => spec.operations.filter(o => o.path.includes('/zones')).map(o => o.method + ' ' + o.path)`) with the global `spec` and returns its JSON result. */
  run(code: string): Promise<unknown> {
    return this.enqueue(() => this.search(code));
  }

  /** Approximate heap held by the warm isolate (isolate.getHeapStatistics), for benchmarks. */
  heapBytes(): Promise<number> {
    return this.enqueue(async () => {
      const stats = await (await this.ready()).isolate.getHeapStatistics();
      return stats.used_heap_size + stats.externally_allocated_size;
    });
  }

  dispose(): void {
    this.disposed = true;
    if (this.warm && !this.warm.isolate.isDisposed) this.warm.isolate.dispose();
    this.warm = undefined;
  }

  private enqueue<T>(task: () => Promise<T>): Promise<T> {
    const result = this.queue.then(task);
    this.queue = result.catch(() => undefined);
    return result;
  }

  private async search(code: string): Promise<unknown> {
    const { isolate, context, run, take } = await this.ready();
    // Syntax errors are thrown as they are: ScriptSyntaxError with line and column.
    const script = await compileUserFunction(isolate, code);
    const options = { timeout: this.limits.timeoutMs };
    let outcome: [string, string];
    try {
      const fn = await script.run(context, { ...options, reference: true });
      try {
        await run.apply(undefined, [fn.derefInto()], options);
      } finally {
        fn.release();
      }
      outcome = (await take.apply(undefined, [], { ...options, result: { copy: true } })) as [string, string];
    } catch (e) {
      if (this.disposed) throw new Error('This SpecSearch was disposed while the search ran.', { cause: e });
      // Code outside any function body (e.g. an IIFE) runs in script.run and fails here too.
      const info = sandboxFailure(e, isolate, {
        ...this.limits,
        timeoutSubject: 'The search ran for more than',
        timeoutHint: 'Filter spec.operations more narrowly, or look for an endless loop.',
      });
      const frame = /script\.js:(\d+):(\d+)/.exec(e instanceof Error ? String(e.stack) : '');
      if (info.name === 'TimeLimitError' || info.name === 'MemoryLimitError' || !frame)
        throw new SearchError(info.name, info.message);
      throw threw({ name: info.name, message: info.message, line: Number(frame[1]), column: Number(frame[2]) });
    } finally {
      script.release();
    }
    const [kind, text] = outcome;
    if (kind === 'ok') return JSON.parse(text);
    if (kind === 'threw') throw threw(JSON.parse(text) as Parameters<typeof threw>[0]);
    if (kind === 'invalid') throw new SearchError('SearchError', text);
    throw new SearchError(
      'SearchError',
      'The search function returned a promise that never settled. Searches have no timers or I/O, so everything they await must already be resolvable: return the data (or a promise of it) directly.',
    );
  }

  /** The warm isolate, recreated if a search killed it (memory limit). */
  private async ready(): Promise<Warm> {
    if (!this.disposed && (!this.warm || this.warm.isolate.isDisposed)) {
      const warm = await this.boot();
      if (this.disposed) warm.isolate.dispose();
      else this.warm = warm;
    }
    if (this.disposed || !this.warm)
      throw new Error('This SpecSearch was disposed; create a new one with SpecSearch.create().');
    return this.warm;
  }

  private async boot(): Promise<Warm> {
    const isolate = createIsolate(this.limits.memoryMb);
    try {
      const context = await isolate.createContext();
      await (await isolate.compileScript(RUNTIME_SOURCE, { filename: RUNTIME_FILENAME })).run(context);
      await context.evalClosure('globalThis.__dcmSearch = __dcmSearchInstall($0)', [this.specsJson]);
      // References come from eval (a function reached with Reference.get() would block Node's
      // thread when applied, so the time limit could never fire).
      const run: ivm.Reference = await context.eval('__dcmSearch.run', { reference: true });
      const take: ivm.Reference = await context.eval('__dcmSearch.take', { reference: true });
      await context.eval('__dcmSearch.seal()');
      return { isolate, context, run, take };
    } catch (e) {
      const message =
        isolate.isDisposed || /memory limit/i.test(String(e))
          ? `the OpenAPI specs (${Math.round(this.specsJson.length / 1e6)} MB of JSON) do not fit in its memory limit of ${this.limits.memoryMb} MiB; raise memoryMb`
          : e instanceof Error
            ? e.message
            : String(e);
      if (!isolate.isDisposed) isolate.dispose();
      throw new Error(`Cannot set up the search sandbox: ${message}`, { cause: e });
    }
  }
}

/** `name` is empty when the search threw something other than an Error. */
function threw(error: { name: string; message: string; line?: number; column?: number }): SearchError {
  if (!error.name) return new SearchError('SearchError', `The search threw a non-Error value: ${error.message}`);
  const at = error.line === undefined ? '' : ` at line ${error.line}, column ${error.column}`;
  return new SearchError(
    'SearchError',
    `The search threw ${error.name}${at}: ${error.message}`,
    error.line,
    error.column,
  );
}
