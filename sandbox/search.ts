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
import { ProductError, type ErrorName } from '../core/errors.ts';
import type { ScriptErrorInfo } from '../core/journal.ts';
import type { ProviderSpec } from '../providers/spec.ts';
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
