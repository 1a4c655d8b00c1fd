/**
 * The `search` tool's sandbox: one warm isolate holding every provider's operations as the frozen
 * global `spec`, running an agent's search function against it.
 *
 * The specs are copied in once, as the JSON of their records (each schema once; the isolate links
 * them into a graph, see guest/spec-graph.js). Everything a search could change for the next one is
 * frozen: the spec, globalThis and the builtins (prototypes included). Values cross the boundary as
 * JSON strings only; the host reads each search's outcome after isolated-vm has drained the
 * microtask queue, so an async search has settled by then or never will (there is no I/O here).
 */
import ivm from 'isolated-vm';
import { ProductError, type ErrorName } from '../core/errors.ts';
import type { ScriptErrorInfo } from '../core/journal.ts';
import type { LoadedSpec } from '../providers/spec.ts';
import { scriptPosition } from './guest/common.js';
import type { SearchOutcome } from './guest/search-runtime.js';
import { compileUserFunction, createIsolate, loadGuestRuntime, sandboxFailure } from './isolate.ts';

/** What a search did wrong, or the sandbox limit it hit (name TimeLimitError / MemoryLimitError). */
export class SearchError extends ProductError {
  readonly line: number | undefined;
  readonly column: number | undefined;
  constructor(name: ErrorName, message: string, line?: number, column?: number) {
    super(name, message);
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
  private specs: LoadedSpec[];
  private readonly limits: { memoryMb: number; timeoutMs: number };
  private warm: Warm | undefined;
  /** Searches share the isolate's outcome slot, so they run one after another. */
  private queue: Promise<unknown> = Promise.resolve();
  private disposed = false;

  private constructor(specs: LoadedSpec[], limits: { memoryMb: number; timeoutMs: number }) {
    this.specs = specs;
    this.limits = limits;
  }

  /**
   * A warm search sandbox over `specs`. When they do not fit in its memory together, the largest
   * fails alone (its `error` says so, as for a spec that could not be loaded) and the rest are searchable.
   */
  static async create(
    specs: LoadedSpec[],
    options: { memoryMb?: number; timeoutMs?: number } = {},
  ): Promise<SpecSearch> {
    const search = new SpecSearch(specs, {
      memoryMb: options.memoryMb ?? 512,
      timeoutMs: options.timeoutMs ?? 5000,
    });
    for (;;) {
      try {
        search.warm = await search.boot();
        return search;
      } catch (e) {
        if (!(e instanceof SandboxTooSmall)) throw e;
        const largest = search.specs.reduce((a, b) => ((b.json?.length ?? 0) > (a.json?.length ?? 0) ? b : a));
        if (largest.json === undefined) throw e;
        const error = `The OpenAPI spec of provider "${largest.provider}" (${largest.source}, ${Math.round(largest.json.length / 1e6)} MB reduced) does not fit in the search sandbox's memory limit of ${search.limits.memoryMb} MiB beside the others`;
        search.specs = search.specs.map((s) => (s === largest ? { ...s, json: undefined, error } : s));
      }
    }
  }

  /** The specs as searched: one that did not fit in the sandbox has its error. */
  get loaded(): readonly LoadedSpec[] {
    return this.specs;
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
    let outcome: SearchOutcome;
    try {
      const fn = await script.run(context, { ...options, reference: true });
      try {
        await run.apply(undefined, [fn.derefInto()], options);
      } finally {
        fn.release();
      }
      outcome = (await take.apply(undefined, [], { ...options, result: { copy: true } })) as SearchOutcome;
    } catch (e) {
      if (this.disposed) throw new Error('This SpecSearch was disposed while the search ran.', { cause: e });
      // Code outside any function body (e.g. an IIFE) runs in script.run and fails here too.
      const info = sandboxFailure(e, isolate, {
        ...this.limits,
        timeoutSubject: 'The search ran for more than',
        timeoutHint: 'Filter spec.operations more narrowly, or look for an endless loop.',
      });
      if (info.name === 'TimeLimitError' || info.name === 'MemoryLimitError')
        throw new SearchError(info.name, info.message);
      const at = e instanceof Error ? scriptPosition(String(e.stack)) : undefined;
      if (!at) throw new SearchError('SearchError', info.message);
      throw threw({ ...info, ...at });
    } finally {
      script.release();
    }
    const [kind, text] = outcome;
    if (kind === 'ok') return JSON.parse(text);
    if (kind === 'threw') throw threw(JSON.parse(text) as ScriptErrorInfo);
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
      await loadGuestRuntime(isolate, context, 'search-runtime.js');
      const metas = this.specs.map(({ provider, source, error, warnings }) => ({ provider, source, error, warnings }));
      const records = this.specs.map((s) => s.json ?? null);
      await context.evalClosure('globalThis.__dcmSearch = __dcmSearchInstall(...arguments)', [
        JSON.stringify(metas),
        ...records,
      ]);
      // References come from eval (a function reached with Reference.get() would block Node's
      // thread when applied, so the time limit could never fire).
      const run: ivm.Reference = await context.eval('__dcmSearch.run', { reference: true });
      const take: ivm.Reference = await context.eval('__dcmSearch.take', { reference: true });
      await context.eval('__dcmSearch.seal()');
      return { isolate, context, run, take };
    } catch (e) {
      const tooSmall = isolate.isDisposed || /memory limit/i.test(String(e));
      if (!isolate.isDisposed) isolate.dispose();
      if (tooSmall) throw new SandboxTooSmall(e);
      throw new Error(`Cannot set up the search sandbox: ${e instanceof Error ? e.message : String(e)}`, { cause: e });
    }
  }
}

/** The specs do not fit in the search sandbox's memory limit. */
class SandboxTooSmall extends Error {
  constructor(cause: unknown) {
    super('the specs do not fit in the search sandbox', { cause });
  }
}

/** An Error the search threw (or its code outside any function body, e.g. an IIFE). */
function threw(error: ScriptErrorInfo): SearchError {
  const at = error.line === undefined ? '' : ` at line ${error.line}, column ${error.column}`;
  return new SearchError(
    'SearchError',
    `The search threw ${error.name}${at}: ${error.message}`,
    error.line,
    error.column,
  );
}
