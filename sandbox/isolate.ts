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
  // isolated-vm appends the position: "Unexpected token ';' [script.js:2:13]".
  const at = e.message.endsWith(']') ? scriptPosition(e.message.slice(e.message.lastIndexOf('['))) : undefined;
  if (!at) return new ScriptSyntaxError(`The script does not parse: ${e.message}`);
  const reason = e.message.slice(0, e.message.lastIndexOf('[')).trimEnd();
  const { line, column } = at;
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
const GUEST_MODULES = ['runtime.js', 'search-runtime.js', 'common.js'] as const;
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
