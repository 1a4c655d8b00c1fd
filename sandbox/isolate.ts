/**
 * What every sandbox in the product shares: isolates with limits, compiling a user's function so
 * errors point at the user's own lines, and turning isolated-vm's failures into messages a script
 * author can act on.
 */
import { readFileSync } from 'node:fs';
import ivm from 'isolated-vm';
import { ProductError, productError } from '../core/errors.ts';
import type { ScriptErrorInfo } from '../core/journal.ts';
import { GUEST_FILENAME_PREFIX, SCRIPT_FILENAME, scriptPosition } from './guest/common.js';
import { stripTypes } from './typescript.ts';

/** A script's source is a function expression; it is compiled inside parentheses on lines of its own. */
const PREFIX = '(\n';
const SUFFIX = '\n)';

/** A script that cannot even be compiled. Thrown before any job starts. */
export class ScriptSyntaxError extends ProductError {
  readonly line: number | undefined;
  readonly column: number | undefined;
  constructor(message: string, line?: number, column?: number) {
    super('ScriptSyntaxError', message);
    this.line = line;
    this.column = column;
  }
}

export function createIsolate(memoryMb: number): ivm.Isolate {
  return new ivm.Isolate({ memoryLimit: memoryMb });
}

/**
 * Compiles `code` (a function expression, JavaScript or TypeScript) with line numbers matching the
 * submitted text. JavaScript is compiled as it is; code that does not parse as JavaScript gets its
 * types stripped in place (sandbox/typescript.ts), so positions stay the author's either way.
 */
export async function compileUserFunction(isolate: ivm.Isolate, code: string): Promise<ivm.Script> {
  let jsError: unknown;
  try {
    return await compileWrapped(isolate, code);
  } catch (e) {
    if (!isSyntaxError(e)) throw e;
    jsError = e;
  }
  const stripped = stripTypes(code);
  if ('code' in stripped && stripped.code !== code) {
    try {
      return await compileWrapped(isolate, stripped.code);
    } catch (e) {
      throw isSyntaxError(e) ? toSyntaxError(syntaxErrorAt(e), code, '') : e;
    }
  }
  const js = syntaxErrorAt(jsError as Error);
  // Neither JavaScript nor TypeScript: the parser that got further is the one that found the mistake
  // (JavaScript stops at the first type annotation of TypeScript code).
  const ts = 'error' in stripped ? stripped.error : undefined;
  const reported =
    ts && (ts.unsupported || isAfter(ts, js))
      ? {
          ...ts,
          message: ts.unsupported
            ? `${ts.message}: types are removed from scripts, not compiled; write it without ${/enum/.test(ts.message) ? 'an enum (use a union of string literals or an object)' : 'it'}`
            : ts.message,
          kind: 'TypeScript error',
        }
      : js;
  throw toSyntaxError(reported, code, (await isFunctionBody(isolate, code)) ? FUNCTION_BODY_HINT : '');
}

const FUNCTION_BODY_HINT =
  'A script is an async arrow function, e.g. `async () => 1 + 1`: wrap these statements in `async () => { ... }`.';

function compileWrapped(isolate: ivm.Isolate, code: string): Promise<ivm.Script> {
  return isolate.compileScript(PREFIX + code + SUFFIX, { filename: SCRIPT_FILENAME, lineOffset: -1 });
}

/** Whether `code` compiles as the body of a function: statements written without the function around them. */
async function isFunctionBody(isolate: ivm.Isolate, code: string): Promise<boolean> {
  const wrapped = `(async () => {\n${code}\n})`;
  const stripped = stripTypes(wrapped);
  for (const body of new Set([wrapped, 'code' in stripped ? stripped.code : wrapped])) {
    try {
      (await isolate.compileScript(body)).release();
      return true;
    } catch {
      // not this one
    }
  }
  return false;
}

interface SyntaxProblem {
  message: string;
  line?: number;
  column?: number;
  /** How the message starts: "SyntaxError", "TypeScript error". */
  kind?: string;
}

function isSyntaxError(e: unknown): e is Error {
  return e instanceof Error && e.name === 'SyntaxError';
}

/** V8's syntax error: isolated-vm appends the position, "Unexpected token ';' [script.js:2:13]". */
function syntaxErrorAt(e: Error): SyntaxProblem {
  const at = e.message.endsWith(']') ? scriptPosition(e.message.slice(e.message.lastIndexOf('['))) : undefined;
  if (!at) return { message: e.message };
  return { message: e.message.slice(0, e.message.lastIndexOf('[')).trimEnd(), ...at };
}

function isAfter(a: SyntaxProblem, b: SyntaxProblem): boolean {
  if (a.line === undefined || b.line === undefined) return false;
  return a.line > b.line || (a.line === b.line && (a.column ?? 0) > (b.column ?? 0));
}

function toSyntaxError(problem: SyntaxProblem, code: string, hint: string): ScriptSyntaxError {
  const { line, column, kind = 'SyntaxError' } = problem;
  const after = hint ? `\n${hint}` : '';
  if (line === undefined) return new ScriptSyntaxError(`The script does not parse: ${problem.message}${after}`);
  const sourceLine = code.split('\n')[line - 1];
  const excerpt =
    sourceLine === undefined
      ? ''
      : `\n  ${line} | ${sourceLine}\n  ${' '.repeat(String(line).length)} | ${' '.repeat(Math.max(0, (column ?? 1) - 1))}^`;
  return new ScriptSyntaxError(
    `${kind} at line ${line}, column ${column}: ${problem.message}${excerpt}${after}`,
    line,
    column,
  );
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
    return productError(
      'MemoryLimitError',
      `The sandbox memory limit of ${limits.memoryMb} MiB was exceeded. Process data in smaller pieces${limits.memoryMb >= 128 ? '' : ', or raise the limit'}.`,
    );
  }
  if (/timed out/i.test(message)) {
    return productError('TimeLimitError', `${limits.timeoutSubject} ${limits.timeoutMs} ms. ${limits.timeoutHint}`);
  }
  return { name: e instanceof Error ? e.name : 'Error', message };
}

/** The modules of sandbox/guest/: the runtimes and what they share, loaded into isolates as they are written. */
const GUEST_MODULES = ['runtime.js', 'search-runtime.js', 'common.js', 'spec-graph.js', 'each.js'] as const;
type GuestModule = (typeof GUEST_MODULES)[number];

const guestSources = new Map<GuestModule, string>();

function guestSource(file: GuestModule): string {
  let source = guestSources.get(file);
  if (source === undefined) {
    source = readFileSync(new URL(`./guest/${file}`, import.meta.url), 'utf8');
    guestSources.set(file, source);
  }
  return source;
}

function isGuestModule(file: string): file is GuestModule {
  return (GUEST_MODULES as readonly string[]).includes(file);
}

/**
 * Runs a guest runtime (`entry`, a module of sandbox/guest/) in `context`, with the guest modules it
 * imports. Each runs under the file name `dcm-<file>`, so errors can tell its frames from the
 * script's. The entry leaves its install function on globalThis for the host to call.
 */
export async function loadGuestRuntime(
  isolate: ivm.Isolate,
  context: ivm.Context,
  entry: GuestModule,
  timeoutMs?: number,
): Promise<void> {
  const modules = new Map<GuestModule, ivm.Module>();
  const compile = async (file: GuestModule): Promise<ivm.Module> => {
    let module = modules.get(file);
    if (!module) {
      module = await isolate.compileModule(guestSource(file), { filename: `${GUEST_FILENAME_PREFIX}${file}` });
      modules.set(file, module);
    }
    return module;
  };
  const main = await compile(entry);
  await main.instantiate(context, (specifier) => {
    const file = specifier.replace(/^\.\//, '');
    if (!specifier.startsWith('./') || !isGuestModule(file))
      throw new Error(`guest module ${entry} imports ${specifier}; only the modules of sandbox/guest/ can be loaded`);
    return compile(file);
  });
  await main.evaluate({ timeout: timeoutMs });
}
