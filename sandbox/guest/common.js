// @ts-check
/**
 * What both guest runtimes (runtime.js for execute, search-runtime.js for search) and their hosts
 * share: the file name user code is compiled under, how messages enter the sandbox and values leave
 * it (JSON text, nothing else) and how a thrown value is read (name, message, and line and column of
 * its script frame).
 *
 * An ES module that runs inside the isolates (see loadGuestRuntime in sandbox/isolate.ts) and that
 * the host imports too, so it uses nothing but the language. The builtins it relies on are captured
 * when it loads, before any script runs: a script that replaces JSON or Error affects only itself.
 *
 * @import { Json, ScriptErrorInfo } from '../../core/journal.ts'
 */

/** The file name user code is compiled under; its stack frames and syntax errors name it. */
export const SCRIPT_FILENAME = 'script.js';

/** Guest modules run under `dcm-<file name>`: frames the author of a script does not need to see. */
export const GUEST_FILENAME_PREFIX = 'dcm-';

const { stringify } = JSON;
const { keys } = Object;
const { isArray } = Array;

/**
 * JSON.parse as captured before any script ran, for JSON text the runtime wrote itself or the host
 * sent. Typed as what it returns (JSON values), not `any`.
 */
export const parseJson = /** @type {(text: string) => Json} */ (JSON.parse);
const NativeError = Error;
const NativeTypeError = TypeError;
const NativeRegExp = RegExp;

const escapeRegExp = (/** @type {string} */ text) => text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
const SCRIPT_POSITION = new NativeRegExp(`${escapeRegExp(SCRIPT_FILENAME)}:(\\d+):(\\d+)`);
const RUNTIME_FRAME = new NativeRegExp(`${escapeRegExp(GUEST_FILENAME_PREFIX)}[\\w-]+\\.js:|<isolated-vm`);

/**
 * The first position in the script that `text` (a stack, or a syntax error's message) names.
 * @param {string} text
 * @returns {{ line: number, column: number } | undefined}
 */
export function scriptPosition(text) {
  const at = SCRIPT_POSITION.exec(text);
  return at ? { line: Number(at[1]), column: Number(at[2]) } : undefined;
}

/**
 * The lines of a stack that are frames of the script (the header and the runtime's frames left out).
 * @param {string} stack
 * @returns {string[]}
 */
export function scriptFrames(stack) {
  return stack.split('\n').filter((line) => /^\s+at /.test(line) && SCRIPT_POSITION.test(line));
}

/**
 * `value` as JSON text, or a TypeError naming `what` and where the value stops being JSON (a
 * function, symbol or bigint, a cycle, nesting too deep). Getters, Proxies and toJSON run here,
 * inside the sandbox, once. `replacer` (JSON.stringify's, called with the holder as `this`) gets
 * each value after that check.
 * @param {unknown} value
 * @param {string} what e.g. `the value of step("parse")`
 * @param {(this: unknown, key: string, value: unknown) => unknown} [replacer]
 * @returns {string}
 */
export function toJson(value, what, replacer) {
  let text;
  try {
    text = stringify(value, function (key, /** @type {unknown} */ v) {
      const type = typeof v;
      if (type === 'function' || type === 'symbol' || type === 'bigint') {
        const where = key === '' ? 'the top level' : `key "${key}"`;
        throw new NativeTypeError(`${what} is not JSON-serializable: found a ${type} at ${where}`);
      }
      return replacer ? replacer.call(this, key, v) : v;
    });
  } catch (e) {
    if (e instanceof NativeTypeError && String(e.message).startsWith(what)) throw e;
    throw new NativeTypeError(`${what} is not JSON-serializable: ${describeThrown(e)}`);
  }
  return text === undefined ? 'null' : text;
}

/**
 * What an Error thrown by user code says, read inside the sandbox (its getters and Proxies run
 * here): name, message, the stack without the runtime's frames, and the position in the script.
 * @param {Error} e
 * @returns {ScriptErrorInfo}
 */
export function errorInfo(e) {
  const stack = String(e.stack);
  /** @type {ScriptErrorInfo} */
  const info = {
    name: String(e.name),
    message: String(e.message),
    stack: stack
      .split('\n')
      .filter((line) => !RUNTIME_FRAME.test(line))
      .join('\n'),
  };
  const at = scriptPosition(stack);
  if (at) {
    info.line = at.line;
    info.column = at.column;
  }
  return info;
}

/**
 * A thrown value that is not an Error (or an Error's message), as text: strings as they are,
 * anything else as JSON where it can be.
 * @param {unknown} value
 * @returns {string}
 */
export function describeThrown(value) {
  if (value instanceof NativeError) return String(value.message);
  if (typeof value === 'string') return value;
  try {
    return stringify(value) ?? String(value);
  } catch {
    return String(value);
  }
}

/**
 * A string this long in a message for the sandbox crosses as an argument of its own: escaped inside
 * the message's JSON it would be copied twice more (the JSON text on each side) and parsed again in
 * the sandbox, where isolated-vm hands a string argument over in one copy. (A CSV response, a
 * recorded step's JSON: megabytes, where this saves their size two or three times over at the peak.)
 */
export const LONG_STRING_CHARS = 64 * 1024;

/** @typedef {(string | number)[]} JsonPath the keys and indexes that lead to a value in a JSON value */

/**
 * The host's side: a message (a JSON value) as the arguments of the control call that takes it:
 * its JSON text with each long string as null, then, if it has any, the JSON of their paths and the
 * strings themselves. parseMessage() is the sandbox's side.
 * @param {unknown} message
 * @returns {string[]}
 */
export function messageArguments(message) {
  /** @type {JsonPath[]} */
  const paths = [];
  /** @type {string[]} */
  const strings = [];
  /** @type {JsonPath} */
  const path = [];
  // The values JSON.stringify writes: array items, and objects' own enumerable string keys.
  const walk = (/** @type {unknown} */ value) => {
    if (typeof value === 'string') {
      if (value.length >= LONG_STRING_CHARS) {
        paths.push([...path]);
        strings.push(value);
      }
    } else if (typeof value === 'object' && value !== null) {
      const at = /** @type {Record<string, unknown>} */ (value);
      for (const key of isArray(value) ? value.keys() : keys(value)) {
        path.push(key);
        walk(at[key]);
        path.pop();
      }
    }
  };
  walk(message);
  if (strings.length === 0) return [stringify(message)];
  const json = stringify(message, (_key, /** @type {unknown} */ value) =>
    typeof value === 'string' && value.length >= LONG_STRING_CHARS ? null : value,
  );
  return [json, stringify(paths), ...strings];
}

/**
 * The sandbox's side: the message messageArguments() made, its long strings back in their places.
 * @param {string} json
 * @param {string} [pathsJson]
 * @param {string[]} strings
 * @returns {Json}
 */
export function parseMessage(json, pathsJson, ...strings) {
  const message = parseJson(json);
  if (pathsJson === undefined) return message;
  const paths = /** @type {JsonPath[]} */ (parseJson(pathsJson));
  for (let k = 0; k < paths.length; k++) {
    const path = paths[k];
    // The places of a JSON value's strings are in objects and arrays, which both index like this.
    let holder = /** @type {Record<string | number, Json>} */ (message);
    for (let i = 0; i < path.length - 1; i++) holder = /** @type {Record<string | number, Json>} */ (holder[path[i]]);
    // Its place holds null, an own property (even under a key "__proto__"), which this sets.
    holder[path[path.length - 1]] = strings[k];
  }
  return message;
}
