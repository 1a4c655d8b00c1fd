/**
 * What a request must pass before the MCP transport sees it, as pure checks over its headers: the
 * Host header names this server when it listens on loopback (DNS rebinding), a browser's Origin is
 * one we trust, and with tokens configured the bearer token names the principal the request acts
 * for. Each check returns a result object; the transport turns a refusal into its HTTP answer.
 */
import type { IncomingHttpHeaders } from 'node:http';
import { OPERATOR, type Principal } from '../core/principal.ts';
import { authenticate, isLoopbackHost, type TokenTable } from './auth.ts';

/** A passed check (with what it found), or a refusal to answer with `status`. */
export type Checked<T = undefined> =
  | { ok: true; value: T }
  | { ok: false; status: number; code: number; message: string; headers?: Record<string, string> };

/** Who the server is, as the checks need it. */
export interface ServerIdentity {
  /** The address it listens on. */
  host: string;
  port: number;
  /** Bearer tokens by principal; without any, callers act as the operator (loopback only). */
  tokens?: TokenTable;
  /** Browser origins allowed besides the server's own. */
  allowedOrigins: string[];
}

const passed = <T>(value: T): Checked<T> => ({ ok: true, value });

function refused(status: number, code: number, message: string, headers?: Record<string, string>): Checked<never> {
  return { ok: false, status, code, message, ...(headers ? { headers } : {}) };
}

/** The Host headers a loopback server answers to: anything else is a rebound DNS name. */
export function loopbackHosts({ host, port }: ServerIdentity): string[] {
  const own = host.includes(':') ? `[${host}]` : host;
  return [...new Set(['127.0.0.1', 'localhost', '[::1]', own])].map((h) => `${h}:${port}`);
}

export function checkHost(headers: IncomingHttpHeaders, server: ServerIdentity): Checked {
  const host = headers.host ?? '';
  if (!isLoopbackHost(server.host) || loopbackHosts(server).includes(host)) return passed(undefined);
  return refused(
    403,
    -32000,
    `Invalid Host header: ${host}. This server only answers to ${loopbackHosts(server).join(', ')}.`,
  );
}

export function checkOrigin(headers: IncomingHttpHeaders, server: ServerIdentity): Checked {
  const { origin, host = '' } = headers;
  if (origin === undefined) return passed(undefined);
  const own = isLoopbackHost(server.host)
    ? loopbackHosts(server).map((h) => `http://${h}`)
    : [`http://${host}`, `https://${host}`];
  if ([...own, ...server.allowedOrigins].includes(origin)) return passed(undefined);
  return refused(
    403,
    -32000,
    `Origin ${origin} is not allowed. Add it to http.allowedOrigins to let that web page call this server.`,
  );
}

export function checkAuthorization(headers: IncomingHttpHeaders, server: ServerIdentity): Checked<Principal> {
  if (!server.tokens?.principals.length) return passed(OPERATOR);
  const principal = authenticate(headers.authorization, server.tokens);
  if (principal) return passed(principal);
  return refused(
    401,
    -32001,
    'Unauthorized: send "Authorization: Bearer <token>" with a token configured for this server.',
    { 'www-authenticate': 'Bearer realm="durable-codemode"' },
  );
}

/** Host, then Origin: whether the request comes from where this server expects callers. */
export function checkSource(headers: IncomingHttpHeaders, server: ServerIdentity): Checked {
  const host = checkHost(headers, server);
  return host.ok ? checkOrigin(headers, server) : host;
}

/** All three checks: the principal the request acts for, or the first refusal. */
export function admit(headers: IncomingHttpHeaders, server: ServerIdentity): Checked<Principal> {
  const source = checkSource(headers, server);
  return source.ok ? checkAuthorization(headers, server) : source;
}
