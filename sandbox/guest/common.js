// @ts-check
/**
 * What both guest runtimes (runtime.js for execute, search-runtime.js for search) and their hosts
 * share: the file name user code is compiled under, how values leave the sandbox (JSON text, nothing
 * else) and how a thrown value is read (name, message, and line and column of its script frame).
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
