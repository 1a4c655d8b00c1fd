/**
 * The one list of names the sandboxes define. The config refuses a provider under any of them
 * (a provider becomes a global of the same name), and the runtimes are tested to define exactly
 * these.
 */

/** Globals of the execute sandbox besides the provider clients. */
export const SCRIPT_GLOBALS = [
  'input',
  'resume',
  'step',
  'checkpoint',
  'each',
  'CSV',
  'sleep',
  'progress',
  'console',
  'ApiError',
  'approve',
  'ApprovalDeniedError',
] as const;

/** Globals of the search sandbox. */
export const SEARCH_GLOBALS = ['spec', 'types'] as const;

/**
 * Standard JavaScript globals a provider must not shadow either: the runtimes and scripts rely on
 * them. (Not exhaustive of every host API; the isolate has none of those anyway.)
 */
const LANGUAGE_GLOBALS = [
  'globalThis',
  'Object',
  'Function',
  'Array',
  'Number',
  'Boolean',
  'String',
  'Symbol',
  'BigInt',
  'Math',
  'JSON',
  'Date',
  'RegExp',
  'Error',
  'TypeError',
  'RangeError',
  'SyntaxError',
  'ReferenceError',
  'EvalError',
  'URIError',
  'AggregateError',
  'Promise',
  'Proxy',
  'Reflect',
  'Map',
  'Set',
  'WeakMap',
  'WeakSet',
  'WeakRef',
  'FinalizationRegistry',
  'ArrayBuffer',
  'SharedArrayBuffer',
  'DataView',
  'Atomics',
  'Intl',
  'Iterator',
  'Int8Array',
  'Uint8Array',
  'Uint8ClampedArray',
  'Int16Array',
  'Uint16Array',
  'Int32Array',
  'Uint32Array',
  'Float32Array',
  'Float64Array',
  'BigInt64Array',
  'BigUint64Array',
  'NaN',
  'Infinity',
  'undefined',
  'eval',
  'isFinite',
  'isNaN',
  'parseFloat',
  'parseInt',
  'decodeURI',
  'decodeURIComponent',
  'encodeURI',
  'encodeURIComponent',
  'escape',
  'unescape',
  'WebAssembly',
  // V8's gc(): the execute sandbox's context has it for the host (sandbox/session.ts), emptied
  // before the script runs but not removable.
  'gc',
] as const;

const RESERVED = new Set<string>([...SCRIPT_GLOBALS, ...SEARCH_GLOBALS, ...LANGUAGE_GLOBALS]);

/** Whether a provider may not be named `name`. */
export function isReservedGlobal(name: string): boolean {
  return RESERVED.has(name);
}
