/**
 * What every sandbox in the product shares: isolates with limits, compiling a user's function so
 * errors point at the user's own lines, and turning isolated-vm's failures into messages a script
 * author can act on.
 */
import ivm from 'isolated-vm';
import type { ScriptErrorInfo } from '../core/journal.ts';

/** The file name user code is compiled under; stack frames and syntax errors name it. */
export const SCRIPT_FILENAME = 'script.js';

/** A script's source is a function expression; it is compiled inside parentheses on lines of its own. */
const PREFIX = '(\n';
const SUFFIX = '\n)';

/** A script that cannot even be compiled. Thrown before any job starts. */
export class ScriptSyntaxError extends Error {
  readonly line: number | undefined;
  readonly column: number | undefined;
  constructor(message: string, line?: number, column?: number) {
    super(message);
    this.name = 'ScriptSyntaxError';
    this.line = line;
    this.column = column;
  }
}

export function createIsolate(memoryMb: number): ivm.Isolate {
  return new ivm.Isolate({ memoryLimit: memoryMb });
}

/** Compiles `code` (a function expression) with line numbers matching the submitted text. */
export async function compileUserFunction(isolate: ivm.Isolate, code: string): Promise<ivm.Script> {
  try {
    return await isolate.compileScript(PREFIX + code + SUFFIX, { filename: SCRIPT_FILENAME, lineOffset: -1 });
  } catch (e) {
    throw toSyntaxError(e, code);
  }
}

function toSyntaxError(e: unknown, code: string): Error {
  if (!(e instanceof Error) || e.name !== 'SyntaxError') return e instanceof Error ? e : new Error(String(e));
  const at = /\[script\.js:(\d+):(\d+)\]$/.exec(e.message);
  const reason = e.message.replace(/\s*\[script\.js:\d+:\d+\]$/, '');
  if (!at) return new ScriptSyntaxError(`The script does not parse: ${reason}`);
  const line = Number(at[1]);
  const column = Number(at[2]);
  const sourceLine = code.split('\n')[line - 1];
  const excerpt =
    sourceLine === undefined
      ? ''
      : `\n  ${line} | ${sourceLine}\n  ${' '.repeat(String(line).length)} | ${' '.repeat(Math.max(0, column - 1))}^`;
  return new ScriptSyntaxError(`SyntaxError at line ${line}, column ${column}: ${reason}${excerpt}`, line, column);
}

let syntaxIsolate: ivm.Isolate | undefined;

/**
 * Rejects code that does not compile, with line and column, without running any of it. One small
 * isolate is kept for this: compiling has no side effects a script could leave behind.
 */
export async function checkScriptSyntax(code: string): Promise<void> {
  if (!syntaxIsolate || syntaxIsolate.isDisposed) syntaxIsolate = createIsolate(32);
  const script = await compileUserFunction(syntaxIsolate, code);
  script.release();
}

/** What the limits say in errors: the script sandbox and the search sandbox word them differently. */
export interface LimitWording {
  memoryMb: number;
  timeoutMs: number;
  /** e.g. "The script computed for more than" / "The search ran for more than" */
  timeoutSubject: string;
  /** What to do about a time-out, e.g. "raise limits.roundTimeoutMs" */
  timeoutHint: string;
}

export const SCRIPT_LIMIT_WORDING = {
  timeoutSubject: 'The script computed without waiting on an API call, sleep() or step() for more than',
  timeoutHint: 'Look for an endless loop, or raise limits.roundTimeoutMs.',
};

/** Maps a failure of isolated-vm itself (limits hit, isolate gone) to what the code's author should read. */
export function sandboxFailure(e: unknown, isolate: ivm.Isolate, limits: LimitWording): ScriptErrorInfo {
  const message = e instanceof Error ? e.message : String(e);
  if (isolate.isDisposed || /memory limit/i.test(message)) {
    return {
      name: 'MemoryLimitError',
      message: `The sandbox memory limit of ${limits.memoryMb} MiB was exceeded. Process data in smaller pieces${limits.memoryMb >= 128 ? '' : ', or raise the limit'}.`,
    };
  }
  if (/timed out/i.test(message)) {
    return {
      name: 'TimeLimitError',
      message: `${limits.timeoutSubject} ${limits.timeoutMs} ms. ${limits.timeoutHint}`,
    };
  }
  return { name: e instanceof Error ? e.name : 'Error', message };
}
