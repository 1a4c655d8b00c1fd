/**
 * TypeScript in scripts: annotations, interfaces, generics, `as` and `satisfies` are stripped by
 * Node's own stripTypeScriptTypes, which puts whitespace where the types were, so every line and
 * column the sandbox reports is the one the author wrote. Syntax that would need compiling (enum,
 * namespace, parameter properties) is refused with where it is.
 */
import { stripTypeScriptTypes } from 'node:module';

export type Stripped =
  { code: string } | { error: { message: string; line?: number; column?: number; unsupported: boolean } };

let warned = false;

/** `code` without its types, or why it is not TypeScript this can run. */
export function stripTypes(code: string): Stripped {
  try {
    return { code: quietly(() => stripTypeScriptTypes(code, { mode: 'strip' })) };
  } catch (e) {
    const error = e as Error & { code?: string };
    if (error.code !== 'ERR_INVALID_TYPESCRIPT_SYNTAX' && error.code !== 'ERR_UNSUPPORTED_TYPESCRIPT_SYNTAX') throw e;
    return {
      error: {
        message: error.message,
        ...position(String(error.stack)),
        unsupported: error.code === 'ERR_UNSUPPORTED_TYPESCRIPT_SYNTAX',
      },
    };
  }
}

/**
 * Node prints "stripTypeScriptTypes is an experimental feature" once per process; in a server's
 * or worker's log that line says nothing to the operator, so the first call keeps it back.
 */
function quietly<T>(run: () => T): T {
  if (warned) return run();
  warned = true;
  // eslint-disable-next-line @typescript-eslint/unbound-method -- put back as it was, never called unbound
  const emitWarning = process.emitWarning;
  const forward = emitWarning.bind(process) as (...args: unknown[]) => void;
  process.emitWarning = (warning: string | Error, ...rest: unknown[]) => {
    if (!String(warning).includes('stripTypeScriptTypes')) forward(warning, ...rest);
  };
  try {
    return run();
  } finally {
    process.emitWarning = emitWarning;
  }
}

/**
 * Where the parser stopped: its stack starts with `:<line>`, the source lines around it, and a line
 * of carets under the spot.
 */
function position(stack: string): { line?: number; column?: number } {
  const lines = stack.split('\n');
  const line = /^:(\d+)$/.exec(lines[0])?.[1];
  const caret = lines.find((l) => /^\s*\^+\s*$/.test(l));
  if (line === undefined) return {};
  return { line: Number(line), ...(caret ? { column: caret.indexOf('^') + 1 } : {}) };
}
