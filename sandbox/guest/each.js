// @ts-check
/**
 * `each(items, fn, options)`: the sandbox's way to write imports (issue 15). It runs `fn(item, index)`
 * for every item, `options.concurrency` at a time (their calls share rounds), and records how each
 * item ended in the job's ledger instead of throwing: done (with a small value fn returns), failed
 * (the error's name, status and message, and the item itself to fix and feed back), or uncertain.
 *
 * Items are identified by `options.key(item, index)` (default: the index). A resumed attempt is told
 * the keys earlier attempts did (KnownItems): those items are skipped without calling anything,
 * whatever the new code looks like. Keys left uncertain go through `options.reconcile(item)` first.
 *
 * While an each() with `reconcile` runs, its writes ask the worker not to send them again blindly
 * when the worker that sent them was lost before any answer (they fail with UncertainCallError
 * instead), so reconcile can find out whether they landed before the item runs again.
 *
 * Runs inside the isolate, imported by runtime.js; entries leave it in the round report.
 *
 * @import { EachPlan, KnownItems, LedgerCounts, LedgerEntry } from '../../core/ledger.ts'
 * @import { Progress } from '../../core/journal.ts'
 */
import { describeThrown, parseJson, toJson } from './common.js';

// Mirrors core/ledger.ts (guest modules import nothing but each other).
const DEFAULT_LEDGER = 'items';
const MAX_ENTRY_VALUE_BYTES = 256;
const MAX_ENTRY_ITEM_BYTES = 2048;
const MAX_ENTRY_MESSAGE_CHARS = 500;
const MAX_KEY_CHARS = 500;
const MAX_CONCURRENCY = 1000;

const NativePromise = Promise;
const NativeSet = Set;
const NativeMap = Map;
const NativeError = Error;
const { isArray } = Array;
const { isInteger, isFinite } = Number;
const { freeze, keys: keysOfObject } = Object;
const { stringify } = JSON;

/** Errors that end the job whatever each() does: an item must not swallow them. */
const JOB_ERRORS = ['ReplayDivergenceError'];

/**
 * @typedef {object} EachDeps
 * @property {KnownItems} known what earlier attempts did, per ledger name
 * @property {boolean} preview a dry run: each() reports its plan and runs nothing
 * @property {() => number} now the journaled clock
 * @property {(message: string) => Error} typeError a TypeError for the script
 * @property {(message: string, callSite: Error) => Error} tooManyFailures a TooManyFailuresError for the script, its stack at `callSite`
 */

/**
 * @typedef {object} EachOptions
 * @property {ItemFunction} key
 * @property {number} concurrency
 * @property {number} maxFailures how many failed or uncertain items end each() early
 * @property {ItemFunction | undefined} reconcile
 * @property {string} name
 */

/** @typedef {(item: unknown, index: number) => unknown} ItemFunction fn, and options.key and options.reconcile */

/** @typedef {{ done: Set<string>, uncertain: Set<string>, failed: Set<string> }} Known what earlier attempts did with a ledger's keys */

/** @param {EachDeps} deps */
export function createEach(deps) {
  /** @type {LedgerEntry[]} entries settled since the last report */
  let entries = [];
  /** @type {EachPlan[]} */
  let plans = [];
  /** @type {Map<string, LedgerCounts>} per ledger name, this attempt */
  const counts = new NativeMap();
  /** Ledger names used without options.key: a second each() on one of them would reuse its index keys. */
  const indexKeyed = new NativeSet();
  /** @type {Map<string, Known>} */
  const known = new NativeMap();
  for (const name of keysOfObject(deps.known)) {
    const k = deps.known[name];
    known.set(name, {
      done: new NativeSet(k.done),
      uncertain: new NativeSet(k.uncertain),
      failed: new NativeSet(k.failed),
    });
  }
  let reconciling = 0;
  let changed = false;
  /** @type {(() => Progress) | undefined} the progress of the each() that changed last, computed when reported */
  let progressDue;

  /**
   * @param {unknown} items
   * @param {unknown} fn
   * @param {unknown} [options]
   */
  function each(items, fn, options) {
    // Where the script called each(): a TooManyFailuresError points there.
    const callSite = new NativeError();
    let opts, keys;
    try {
      if (!isArray(items))
        throw deps.typeError(`each(items, fn, options): items must be an array; got ${typeOf(items)}`);
      if (typeof fn !== 'function')
        throw deps.typeError(`each(items, fn, options): fn must be a function; got ${typeOf(fn)}`);
      opts = readOptions(options, items.length, deps.typeError);
      if (!opts.keyed && indexKeyed.has(opts.name))
        throw deps.typeError(
          `each(): this job already ran an each() on the ledger "${opts.name}" keyed by index, so index keys would mix two lists. Give this one its own options.name, or options.key to identify items across calls.`,
        );
      keys = keysOf(items, opts.key, deps.typeError);
    } catch (e) {
      return NativePromise.reject(asError(e));
    }
    if (!opts.keyed) indexKeyed.add(opts.name);
    const before = known.get(opts.name);
    const count = countsOf(opts.name);
    count.total += items.length;
    changed = true;
    if (deps.preview) {
      plans.push(planOf(opts.name, keys, before, opts.reconcile !== undefined));
      // A dry run stops here: nothing of each() may run.
      return new NativePromise(() => {});
    }
    return run(/** @type {unknown[]} */ (items), /** @type {ItemFunction} */ (fn), opts, keys, before, count, callSite);
  }

  /**
   * @param {unknown[]} items
   * @param {ItemFunction} fn
   * @param {EachOptions & { keyed: boolean }} opts
   * @param {string[]} keys
   * @param {Known | undefined} before
   * @param {LedgerCounts} count
   * @param {Error} callSite
   */
  function run(items, fn, opts, keys, before, count, callSite) {
    const summary = { done: 0, failed: 0, uncertain: 0, skipped: 0, ledger: opts.name };
    const startedAt = deps.now();
    const { reconcile } = opts;
    if (reconcile) reconciling++;
    return new NativePromise((resolve, reject) => {
      let next = 0;
      let running = 0;
      let over = false;

      const finish = () => {
        if (reconcile) reconciling--;
        resolve(freeze({ ...summary }));
      };

      /** @returns {Progress} */
      const progress = () => {
        const settled = summary.done + summary.failed + summary.uncertain;
        const seconds = (deps.now() - startedAt) / 1000;
        const rate = seconds > 0 ? ` · ${Math.round(settled / seconds)}/s` : '';
        return {
          done: settled + summary.skipped,
          total: items.length,
          message: `${opts.name}: ${summary.done} done, ${summary.failed} failed${summary.uncertain ? `, ${summary.uncertain} uncertain` : ''}${summary.skipped ? `, ${summary.skipped} skipped` : ''}${rate}`,
        };
      };

      /** How the first failure read, for the message when there are too many. */
      let firstFailure = '';

      /** @param {LedgerEntry} entry */
      const settle = (entry) => {
        running--;
        entries.push(entry);
        changed = true;
        summary[entry.status]++;
        count[entry.status]++;
        if (entry.status !== 'done' && !firstFailure) firstFailure = describeEntry(entry);
        progressDue = progress;
        if (over) return;
        if (summary.failed + summary.uncertain > opts.maxFailures) {
          over = true;
          if (reconcile) reconciling--;
          reject(
            deps.tooManyFailures(
              `each() on "${opts.name}": ${summary.failed + summary.uncertain} of ${items.length} items failed, more than options.maxFailures allows (${opts.maxFailures}). The first: ${firstFailure}. Read the failures with the job tool or \`durable-codemode jobs ledger JOB_ID --failed\`, fix the data or the script, then job_resume: items already done are not sent again.`,
              callSite,
            ),
          );
          return;
        }
        launch();
      };

      const launch = () => {
        while (!over && running < opts.concurrency && next < items.length) {
          const index = next++;
          const key = keys[index];
          if (before && before.done.has(key)) {
            summary.skipped++;
            count.skipped++;
            changed = true;
            progressDue = progress;
            continue;
          }
          running++;
          const uncertainBefore = before !== undefined && before.uncertain.has(key);
          runItem(items[index], index, key, uncertainBefore).then(settle, (e) => {
            // A job-level error (a replay divergence) ends each() and, unless caught, the job.
            over = true;
            if (reconcile) reconciling--;
            reject(asError(e));
          });
        }
        if (!over && running === 0 && next >= items.length) {
          over = true;
          finish();
        }
      };

      /**
       * @param {unknown} item
       * @param {number} index
       * @param {string} key
       * @param {boolean} uncertainBefore
       * @returns {Promise<LedgerEntry>}
       */
      const runItem = async (item, index, key, uncertainBefore) => {
        /** @type {Pick<LedgerEntry, 'ledger' | 'key' | 'index'>} */
        const id = { ledger: opts.name, key, index };
        /** @type {'landed' | 'retried' | undefined} */
        let reconciled;
        /**
         * Whether the item already landed, by reconcile. A reconcile that throws leaves the item
         * uncertain (with reconcile's error), so a resume asks again rather than send it blindly.
         * @param {ItemFunction} ask
         * @returns {Promise<LedgerEntry | undefined>} the item's entry, unless it is to run (again)
         */
        const settledBy = async (ask) => {
          let found;
          try {
            found = await ask(item, index);
          } catch (e) {
            if (isJobError(e)) throw e;
            return { ...id, status: 'uncertain', error: errorOf(e), ...itemOf(item) };
          }
          if (found) return { ...id, status: 'done', ...valueOf(found), reconciled: 'landed' };
          reconciled = 'retried';
          return undefined;
        };
        try {
          if (uncertainBefore && reconcile) {
            const settled = await settledBy(reconcile);
            if (settled) return settled;
          }
          let value;
          try {
            value = await fn(item, index);
          } catch (e) {
            if (!isUncertain(e) || !reconcile || reconciled) throw e;
            // The call may have landed: ask before running the item again.
            const settled = await settledBy(reconcile);
            if (settled) return settled;
            value = await fn(item, index);
          }
          return { ...id, status: 'done', ...valueOf(value), ...(reconciled ? { reconciled } : {}) };
        } catch (e) {
          if (isJobError(e)) throw e;
          return {
            ...id,
            status: isUncertain(e) ? 'uncertain' : 'failed',
            error: errorOf(e),
            ...itemOf(item),
            ...(reconciled ? { reconciled } : {}),
          };
        }
      };

      launch();
    });
  }

  /** @param {string} name */
  function countsOf(name) {
    let count = counts.get(name);
    if (!count) {
      count = { total: 0, done: 0, failed: 0, uncertain: 0, skipped: 0 };
      counts.set(name, count);
    }
    return count;
  }

  return {
    each,
    /** Whether an each() with reconcile is running: its writes ask not to be sent again blindly. */
    reconciling: () => reconciling > 0,
    /**
     * The ledger part of the round report, or undefined when nothing changed: the entries settled
     * since the last report and the counts of every ledger this attempt used.
     */
    takeReport() {
      if (!changed) return undefined;
      /** @type {Record<string, LedgerCounts>} */
      const all = {};
      for (const [name, count] of counts) all[name] = { ...count };
      const report = { entries, counts: all };
      entries = [];
      changed = false;
      return report;
    },
    /** Progress of the each() that changed last since the last report (done / total, rate), if any. */
    takeProgress() {
      const due = progressDue;
      progressDue = undefined;
      return due?.();
    },
    /** The plans of a dry run's each() calls since the last report. */
    takePlans() {
      const taken = plans;
      plans = [];
      return taken;
    },
  };
}

/**
 * @param {unknown} options
 * @param {number} total
 * @param {(message: string) => Error} typeError
 * @returns {EachOptions & { keyed: boolean }}
 */
function readOptions(options, total, typeError) {
  if (options !== undefined && (options === null || typeof options !== 'object'))
    throw typeError(`each(items, fn, options): options must be an object; got ${typeOf(options)}`);
  const o = /** @type {Record<string, unknown>} */ (options || {});
  const { key, concurrency = 10, maxFailures = Infinity, reconcile, name = DEFAULT_LEDGER } = o;
  if (key !== undefined && typeof key !== 'function')
    throw typeError(`each(): options.key must be a function (item, index) => a string or number; got ${typeOf(key)}`);
  if (typeof concurrency !== 'number' || !isInteger(concurrency) || concurrency < 1 || concurrency > MAX_CONCURRENCY)
    throw typeError(
      `each(): options.concurrency must be a whole number from 1 to ${MAX_CONCURRENCY}; got ${String(concurrency)}`,
    );
  if (
    typeof maxFailures !== 'number' ||
    !(maxFailures >= 0) ||
    (maxFailures >= 1 && isFinite(maxFailures) && !isInteger(maxFailures))
  )
    throw typeError(
      `each(): options.maxFailures must be a count (a whole number) or a fraction of the items between 0 and 1; got ${String(maxFailures)}`,
    );
  if (reconcile !== undefined && typeof reconcile !== 'function')
    throw typeError(
      `each(): options.reconcile must be a function (item, index) => truthy if the item already landed; got ${typeOf(reconcile)}`,
    );
  if (typeof name !== 'string' || name === '' || name.length > 100)
    throw typeError(`each(): options.name must be a non-empty string of at most 100 characters; got ${String(name)}`);
  return {
    key: /** @type {EachOptions['key']} */ (
      key || ((/** @type {unknown} */ _item, /** @type {number} */ index) => index)
    ),
    keyed: key !== undefined,
    concurrency,
    maxFailures: maxFailures > 0 && maxFailures < 1 ? Math.floor(maxFailures * total) : maxFailures,
    reconcile: /** @type {EachOptions['reconcile']} */ (reconcile),
    name,
  };
}

/**
 * Every item's key, checked: a string or number, not too long, no two alike.
 * @param {unknown[]} items
 * @param {EachOptions['key']} keyOf
 * @param {(message: string) => Error} typeError
 */
function keysOf(items, keyOf, typeError) {
  /** @type {string[]} */
  const keys = new Array(items.length);
  /** @type {Map<string, number>} */
  const seen = new NativeMap();
  for (let i = 0; i < items.length; i++) {
    const raw = keyOf(items[i], i);
    if (typeof raw !== 'string' && !(typeof raw === 'number' && isFinite(raw)))
      throw typeError(`each(): options.key must return a string or a number; for item ${i} it returned ${typeOf(raw)}`);
    const key = String(raw);
    if (key.length > MAX_KEY_CHARS)
      throw typeError(
        `each(): the key of item ${i} is ${key.length} characters; keys identify items and may have at most ${MAX_KEY_CHARS}`,
      );
    const first = seen.get(key);
    if (first !== undefined)
      throw typeError(
        `each(): items ${first} and ${i} have the same key ${stringify(key)}; keys identify items in the ledger, so they must be unique (pick another options.key)`,
      );
    seen.set(key, i);
    keys[i] = key;
  }
  return keys;
}

/**
 * @param {string} ledger
 * @param {string[]} keys
 * @param {Known | undefined} before
 * @param {boolean} reconcile
 * @returns {EachPlan}
 */
function planOf(ledger, keys, before, reconcile) {
  const plan = { ledger, total: keys.length, skip: 0, retry: 0, reconcile: 0, new: 0 };
  for (const key of keys) {
    if (before?.done.has(key)) plan.skip++;
    else if (before?.uncertain.has(key)) {
      plan.retry++;
      if (reconcile) plan.reconcile++;
    } else if (before?.failed.has(key)) plan.retry++;
    else plan.new++;
  }
  return plan;
}

/** @param {unknown} value @returns {{ value?: import('../../core/journal.ts').Json, valueBytes?: number }} */
function valueOf(value) {
  if (value === undefined) return {};
  let text;
  try {
    text = toJson(value, 'the value');
  } catch {
    return {};
  }
  return text.length <= MAX_ENTRY_VALUE_BYTES ? { value: parseJson(text) } : { valueBytes: text.length };
}

/** @param {unknown} item @returns {{ item?: import('../../core/journal.ts').Json }} */
function itemOf(item) {
  try {
    const text = toJson(item, 'the item');
    return text.length <= MAX_ENTRY_ITEM_BYTES ? { item: parseJson(text) } : {};
  } catch {
    return {};
  }
}

/** @param {unknown} e @returns {NonNullable<LedgerEntry['error']>} */
function errorOf(e) {
  const error = /** @type {{ name?: unknown, message?: unknown, status?: unknown }} */ (
    e !== null && typeof e === 'object' ? e : {}
  );
  const message = e instanceof NativeError ? String(error.message) : describeThrown(e);
  return {
    name: e instanceof NativeError ? String(error.name) : 'Error',
    message: message.length > MAX_ENTRY_MESSAGE_CHARS ? `${message.slice(0, MAX_ENTRY_MESSAGE_CHARS)}…` : message,
    ...(typeof error.status === 'number' && isInteger(error.status) ? { status: error.status } : {}),
  };
}

/** @param {LedgerEntry} entry */
function describeEntry(entry) {
  const { error } = entry;
  const what = error ? `${error.name}${error.status ? ` ${error.status}` : ''}: ${error.message}` : entry.status;
  return `key ${stringify(entry.key)}, ${what}`;
}

/**
 * What each() rejects with: the error thrown (options.key, a job-level error), or an Error saying what was thrown.
 * @param {unknown} e
 */
const asError = (e) => (e instanceof NativeError ? e : new NativeError(describeThrown(e)));

/** @param {unknown} e */
const isUncertain = (e) => e instanceof NativeError && e.name === 'UncertainCallError';
/** @param {unknown} e */
const isJobError = (e) => e instanceof NativeError && JOB_ERRORS.includes(e.name);

/** @param {unknown} value */
function typeOf(value) {
  return value === null ? 'null' : isArray(value) ? 'an array' : typeof value;
}
