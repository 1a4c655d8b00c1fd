/**
 * Putting the real values back into a request just before it leaves the worker: tokens in its
 * path, query, body or tool arguments (strings and object keys) are replaced by what they stand
 * for in the job owner's vault. A token the owner's vault does not hold stops the request: it is
 * never sent with the token in place of the value.
 */
import { ProductError } from '../core/errors.ts';
import type { HttpEffect, ToolEffect } from '../core/journal.ts';
import { TOKEN } from './tokens.ts';
import type { PrincipalVault } from './vault.ts';

export class PrivacyTokenError extends ProductError {
  constructor(tokens: string[], label: string) {
    super(
      'PrivacyTokenError',
      `${label} was not sent: ${tokens.join(', ')} ${tokens.length > 1 ? 'are' : 'is'} not in your privacy vault (unknown, expired, purged, or another principal's). Use tokens from your own recent answers, or look the record up again for a fresh token.`,
    );
  }
}

/** Every distinct token in the strings and keys of a JSON value. */
export function tokensIn(value: unknown, into = new Set<string>()): Set<string> {
  if (typeof value === 'string') {
    if (value.includes('[')) for (const m of value.matchAll(TOKEN)) into.add(m[0]);
  } else if (Array.isArray(value)) {
    for (const item of value) tokensIn(item, into);
  } else if (value !== null && typeof value === 'object') {
    for (const [key, item] of Object.entries(value)) {
      tokensIn(key, into);
      tokensIn(item, into);
    }
  }
  return into;
}

/** `value` with every token replaced by `encode(its value)`. */
function replaced<T>(value: T, values: ReadonlyMap<string, string>, encode: (v: string) => string = (v) => v): T {
  if (typeof value === 'string') {
    return (value.includes('[') ? value.replace(TOKEN, (token) => encode(values.get(token) ?? token)) : value) as T;
  }
  if (Array.isArray(value)) return (value as unknown[]).map((item) => replaced(item, values, encode)) as T;
  if (value !== null && typeof value === 'object') {
    return Object.fromEntries(
      Object.entries(value).map(([key, item]) => [replaced(key, values), replaced(item, values, encode)]),
    ) as T;
  }
  return value;
}

/** An HTTP request (its body resolved) or a tool call, as the worker is about to send it. */
export type OutgoingRequest = HttpEffect | ToolEffect;

/**
 * The request with the owner's tokens restored; the same object when it holds no token. A token
 * in the path is percent-encoded (the script wrote a path segment); query values and bodies get
 * the value as it was seen.
 */
export async function restoreRequest<R extends OutgoingRequest>(
  request: R,
  label: string,
  vault: PrincipalVault,
): Promise<R> {
  const parts = request.kind === 'http' ? [request.path, request.query, request.body] : [request.args];
  const tokens = new Set<string>();
  for (const part of parts) tokensIn(part, tokens);
  if (tokens.size === 0) return request;
  const values = await vault.valuesOf(tokens);
  const missing = [...tokens].filter((token) => !values.has(token));
  if (missing.length > 0) throw new PrivacyTokenError(missing, label);
  if (request.kind === 'tool') return { ...request, args: replaced(request.args, values) };
  return {
    ...request,
    path: replaced(request.path, values, encodeURIComponent),
    ...(request.query ? { query: replaced(request.query, values) } : {}),
    ...(request.body !== undefined ? { body: replaced(request.body, values) } : {}),
  };
}
