/**
 * Performs one provider request on the host, on the script's behalf. This is where credentials
 * are added and where the base URL is enforced: the sandbox can only ask, never reach the network.
 */
import { INTERNAL_FAILURES, productError } from '../core/errors.ts';
import type { EffectOutcome, HttpEffect, Json } from '../core/journal.ts';
import type { HttpProviderConfig, ProviderAuth } from './config.ts';

/** A failure worth retrying (connection error, timeout, 408, 429, 5xx); the caller decides when. */
export class TransientHttpError extends Error {
  readonly status: number | undefined;
  readonly retryAfterMs: number | undefined;
  /** The request never left (no connection could be made), so the API cannot have applied it. */
  readonly notSent: boolean;
  constructor(message: string, status?: number, retryAfterMs?: number, notSent = false) {
    super(message);
    this.name = INTERNAL_FAILURES.TransientHttpError;
    this.status = status;
    this.retryAfterMs = retryAfterMs;
    this.notSent = notSent;
  }
}

/** Connection errors that mean nothing was sent. */
const NOT_CONNECTED = new Set(['ECONNREFUSED', 'ENOTFOUND', 'EAI_AGAIN', 'EHOSTUNREACH', 'ENETUNREACH']);

const RETRYABLE_STATUS = new Set([408, 425, 429, 500, 502, 503, 504]);
const MAX_ERROR_BODY_CHARS = 2_000;

/**
 * Resolves `path` under the provider's base URL, refusing anything that would leave it: absolute
 * URLs, `..` segments (also percent-encoded), backslashes and authority tricks.
 */
export function resolveProviderUrl(baseUrl: string, path: string): URL {
  const base = new URL(baseUrl);
  const basePath = base.pathname.replace(/\/+$/, '');
  let decoded: string;
  try {
    decoded = decodeURIComponent(path);
  } catch {
    throw new Error(`path ${JSON.stringify(path)} is not valid percent-encoding`);
  }
  if (
    !path.startsWith('/') ||
    path.startsWith('//') ||
    /\\/.test(decoded) ||
    /(^|\/)\.\.?(\/|$)/.test(decoded) ||
    /[\s#]/.test(path)
  ) {
    throw new Error(
      `path ${JSON.stringify(path)} must be a plain absolute path under the provider's base URL (no "..", "//", "\\", "#" or whitespace)`,
    );
  }
  const url = new URL(base.origin + basePath + path);
  if (url.origin !== base.origin || !url.pathname.startsWith(basePath + '/')) {
    throw new Error(`path ${JSON.stringify(path)} leaves the provider's base URL ${baseUrl}`);
  }
  return url;
}

/** Headers and query parameters that carry a provider's credential, read from the environment. */
export function authOf(
  auth: ProviderAuth | undefined,
  env: NodeJS.ProcessEnv,
): { headers: Record<string, string>; query: Record<string, string> } {
  if (!auth) return { headers: {}, query: {} };
  const envName = auth.type === 'bearer' ? auth.tokenEnv : auth.valueEnv;
  const secret = env[envName];
  if (!secret)
    throw new Error(`the provider's credential is missing: set the environment variable ${envName} for the worker`);
  // fetch would refuse such a header value by quoting it in its error: the secret would travel on in the message.
  if (auth.type !== 'query' && /[\0\r\n]|[^\0-\xff]/.test(secret.trim())) {
    throw new Error(
      `the provider's credential in ${envName} cannot be sent in an HTTP header (it holds a line break, a NUL or a character beyond Latin-1): fix the variable`,
    );
  }
  if (auth.type === 'bearer') return { headers: { authorization: `Bearer ${secret}` }, query: {} };
  if (auth.type === 'header') return { headers: { [auth.header]: secret }, query: {} };
  return { headers: {}, query: { [auth.param]: secret } };
}

/**
 * Sends the request. 2xx → `{ ok: true, value }` with the parsed body; other 4xx → `{ ok: false }`
 * for the script to catch; transient failures throw TransientHttpError so Temporal retries them.
 */
export async function performRequest(
  provider: HttpProviderConfig,
  request: HttpEffect,
  idempotencyKey: string,
  signal?: AbortSignal,
  env: NodeJS.ProcessEnv = process.env,
): Promise<EffectOutcome> {
  const label = `${request.method} ${request.path}`;
  let url: URL;
  let auth: ReturnType<typeof authOf>;
  try {
    url = resolveProviderUrl(provider.baseUrl, request.path);
    auth = authOf(provider.auth, env);
  } catch (e) {
    return {
      ok: false,
      error: productError('RequestError', `${request.provider}: ${label} refused: ${(e as Error).message}`),
    };
  }
  for (const [key, value] of Object.entries(request.query ?? {})) {
    for (const v of Array.isArray(value) ? value : [value]) url.searchParams.append(key, String(v));
  }
  for (const [key, value] of Object.entries(auth.query)) url.searchParams.set(key, value);

  const headers: Record<string, string> = { accept: 'application/json, text/*;q=0.9', ...auth.headers };
  if (request.body !== undefined) headers['content-type'] = 'application/json';
  if (request.method !== 'GET' && request.method !== 'HEAD') headers[provider.idempotencyHeader] = idempotencyKey;

  let response: Response;
  try {
    response = await fetch(url, {
      method: request.method,
      headers,
      body: request.body === undefined ? undefined : JSON.stringify(request.body),
      redirect: 'manual', // a redirect could point anywhere; the script sees it as a response instead
      signal: signal
        ? AbortSignal.any([signal, AbortSignal.timeout(provider.timeoutMs)])
        : AbortSignal.timeout(provider.timeoutMs),
    });
  } catch (e) {
    const cause = (e as Error & { cause?: Error & { code?: string } }).cause;
    const message = cause?.message ?? (e as Error).message;
    throw new TransientHttpError(
      `${label}: ${withoutCredentials(message, auth)}`,
      undefined,
      undefined,
      NOT_CONNECTED.has(cause?.code ?? ''),
    );
  }
  const body = await readBody(response);
  if (response.ok) return { ok: true, value: body };
  if (RETRYABLE_STATUS.has(response.status)) {
    throw new TransientHttpError(
      `${label} → ${response.status} ${response.statusText}`,
      response.status,
      retryAfterMs(response.headers.get('retry-after')),
    );
  }
  const detail =
    typeof body === 'string'
      ? body.slice(0, MAX_ERROR_BODY_CHARS)
      : JSON.stringify(body).slice(0, MAX_ERROR_BODY_CHARS);
  return {
    ok: false,
    error: {
      ...productError(
        'ApiError',
        `${request.provider}: ${label} → ${response.status} ${response.statusText}${detail ? `: ${detail}` : ''}`,
      ),
      status: response.status,
      body,
    },
  };
}

/** A message from fetch may quote a header value or the URL; the credential in it must not reach history or the script. */
function withoutCredentials(text: string, auth: ReturnType<typeof authOf>): string {
  const secrets = [
    ...Object.values(auth.headers).flatMap((v) => [v, v.replace(/^Bearer /, '')]),
    ...Object.values(auth.query),
  ];
  let out = text;
  for (const secret of secrets) {
    for (const form of [secret, encodeURIComponent(secret), new URLSearchParams({ s: secret }).toString().slice(2)])
      out = out.replaceAll(form, '[credential]');
  }
  return out;
}

async function readBody(response: Response): Promise<Json> {
  const text = await response.text();
  if (text === '') return null;
  if (/\bjson\b/i.test(response.headers.get('content-type') ?? '')) {
    try {
      return JSON.parse(text) as Json;
    } catch {
      return text;
    }
  }
  return text;
}

/** Retry-After is seconds or an HTTP date. */
function retryAfterMs(header: string | null): number | undefined {
  if (!header) return undefined;
  const seconds = Number(header);
  if (Number.isFinite(seconds)) return Math.max(0, seconds * 1000);
  const date = Date.parse(header);
  return Number.isNaN(date) ? undefined : Math.max(0, date - Date.now());
}
