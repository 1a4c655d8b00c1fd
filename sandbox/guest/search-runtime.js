// @ts-check
/**
 * The search sandbox's runtime. Runs INSIDE the isolate: install(metaJson, ...recordJsons) defines
 * the frozen global `spec` and `types` (SEARCH_GLOBALS of core/globals.ts; see spec-graph.js) and
 * returns the controls; seal() removes the install globals and freezes everything. Builtins needed
 * after sealing are safe to use directly: they are frozen too.
 *
 * @import { SpecRecord } from '../../providers/spec.ts'
 * @import { SEARCH_GLOBALS } from '../../core/globals.ts'
 * @import { SpecMeta } from './spec-graph.js'
 */
import { describeThrown, errorInfo, parseJson, toJson } from './common.js';
import { boundedStringify, buildSpec, graphReplacer, typesOf } from './spec-graph.js';

/** @typedef {(typeof SEARCH_GLOBALS)[number]} SearchGlobal */
/** @typedef {['ok' | 'threw' | 'invalid' | 'pending', string]} SearchOutcome */

/**
 * @param {string} metaJson SpecMeta[] as JSON: each provider's name, source, error and warnings
 * @param {...(string | null)} recordJsons each provider's SpecRecord as JSON (null when it failed)
 */
function install(metaJson, ...recordJsons) {
  const metas = /** @type {SpecMeta[]} */ (/** @type {unknown} */ (parseJson(metaJson)));
  const loaded = metas.map((meta, i) => {
    const json = recordJsons[i];
    return { meta, record: json ? /** @type {SpecRecord} */ (/** @type {unknown} */ (parseJson(json))) : undefined };
  });
  const { spec, refOf } = buildSpec(loaded);
  /** @type {Record<SearchGlobal, unknown>} exactly SEARCH_GLOBALS: a name missing or extra is a type error */
  const globals = {
    spec,
    types: (/** @type {unknown} */ target, /** @type {{ depth?: number, maxChars?: number } | undefined} */ options) =>
      typesOf(refOf, target, options),
  };
  for (const [key, value] of Object.entries(globals))
    Object.defineProperty(globalThis, key, { value, enumerable: true, writable: false, configurable: false });
  // Searches that stringify operations themselves (a full-text search) get the graph written boundedly too.
  JSON.stringify = boundedStringify(refOf, JSON.stringify);

  // ---- one search at a time: run(fn), then take() the outcome [kind, text] ------------------------
  /** @type {SearchOutcome | null} */
  let outcome = null;
  // Only the current search may set the outcome, whatever a timed-out one left queued.
  let current = 0;

  /** @param {unknown} value @returns {SearchOutcome} */
  function resultOf(value) {
    try {
      return ['ok', toJson(value, 'the search result', graphReplacer(refOf))];
    } catch (e) {
      return [
        'invalid',
        `${describeThrown(e)}. Return plain data: objects, arrays, strings, numbers, booleans and null.`,
      ];
    }
  }

  /** @param {unknown} e @returns {SearchOutcome} */
  function errorOf(e) {
    try {
      if (e instanceof Error) return ['threw', JSON.stringify(errorInfo(e))];
      return ['invalid', `The search threw a non-Error value: ${describeThrown(e)}`];
    } catch {
      return ['invalid', 'The search threw a value that cannot be read.'];
    }
  }

  /** @param {unknown} fn */
  function run(fn) {
    const id = ++current;
    outcome = null;
    if (typeof fn !== 'function') {
      outcome = [
        'invalid',
        `The search code must be a function expression such as async () => spec.operations.length; it evaluated to ${fn === null ? 'null' : typeof fn}.`,
      ];
      return;
    }
    const search = /** @type {() => unknown} */ (fn);
    let value;
    try {
      value = search();
    } catch (e) {
      outcome = errorOf(e);
      return;
    }
    Promise.resolve(value).then(
      (v) => {
        if (id === current) outcome = resultOf(v);
      },
      (e) => {
        if (id === current) outcome = errorOf(e);
      },
    );
  }

  /** @returns {SearchOutcome} */
  function take() {
    const taken = outcome;
    outcome = null;
    return taken === null ? ['pending', ''] : taken;
  }

  function seal() {
    Reflect.deleteProperty(globalThis, '__dcmSearchInstall');
    Reflect.deleteProperty(globalThis, '__dcmSearch');
    // WebAssembly memory is allocated outside the isolate's heap, so the memory limit would not hold it.
    Reflect.deleteProperty(globalThis, 'WebAssembly');
    allowOverride(Object.prototype, [
      'constructor',
      'toString',
      'toLocaleString',
      'valueOf',
      'hasOwnProperty',
      'isPrototypeOf',
      'propertyIsEnumerable',
    ]);
    allowOverride(Function.prototype, ['constructor', 'toString']);
    allowOverride(Array.prototype, ['constructor', 'toString']);
    for (const E of [Error, TypeError, RangeError, SyntaxError, ReferenceError, EvalError, URIError]) {
      allowOverride(E.prototype, ['constructor', 'name', 'message', 'toString']);
    }
    // An iterator helper (ES2025; not in the es2023 types) for %IteratorHelperPrototype%.
    const iteratorHelper = /** @type {{ map(f: (x: unknown) => unknown): object }} */ (
      /** @type {unknown} */ ([].values())
    ).map((x) => x);
    // Intrinsics that no global names, reached through instances of them.
    const unnamed = [
      function* () {},
      async function () {},
      async function* () {},
      (function* () {})(),
      (async function* () {})(),
      [][Symbol.iterator](),
      new Map()[Symbol.iterator](),
      new Set()[Symbol.iterator](),
      ''[Symbol.iterator](),
      /x/[Symbol.matchAll](''),
      iteratorHelper,
    ];
    harden([globalThis, ...unnamed], spec);
  }

  return { run, take, seal };
}

/**
 * Assigning e.g. this.name in an Error subclass, or obj.toString, must still work once the
 * prototypes are frozen: such properties become accessors that define the property on the instance
 * instead (without this, a frozen inherited property silently blocks the assignment).
 * @param {object} proto
 * @param {string[]} keys
 */
function allowOverride(proto, keys) {
  for (const key of keys) {
    const desc = Object.getOwnPropertyDescriptor(proto, key);
    if (!desc || !('value' in desc)) continue;
    const value = /** @type {unknown} */ (desc.value);
    Object.defineProperty(proto, key, {
      get() {
        return value;
      },
      /** @this {object} @param {unknown} v */
      set(v) {
        if (this === proto)
          throw new TypeError(
            `Cannot assign to ${key}: the builtins are frozen so that searches cannot affect each other`,
          );
        Object.defineProperty(this, key, { value: v, writable: true, enumerable: true, configurable: true });
      },
      enumerable: desc.enumerable,
      configurable: false,
    });
  }
}

/**
 * Freezes everything reachable from `roots` (prototypes, properties, accessors), except `skip`
 * (already frozen).
 * @param {unknown[]} roots
 * @param {object} skip
 */
function harden(roots, skip) {
  const seen = new Set([skip]);
  const stack = roots.slice();
  while (stack.length) {
    const value = stack.pop();
    if (value === null || (typeof value !== 'object' && typeof value !== 'function') || seen.has(value)) continue;
    seen.add(value);
    Object.freeze(value);
    stack.push(Object.getPrototypeOf(value));
    for (const key of Reflect.ownKeys(value)) {
      const desc = /** @type {{ value?: unknown, get?: unknown, set?: unknown }} */ (
        Object.getOwnPropertyDescriptor(value, key)
      );
      if ('value' in desc) stack.push(desc.value);
      else stack.push(desc.get, desc.set);
    }
  }
}

// The host calls this once (see SpecSearch), then seal() removes it.
Object.defineProperty(globalThis, '__dcmSearchInstall', { value: install, writable: true, configurable: true });
