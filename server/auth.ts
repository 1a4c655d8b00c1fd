/**
 * Who is calling. Over HTTP every request names a principal by its bearer token, and every job
 * belongs to the principal that started it; stdio and the CLI act as the operator, who sees all jobs.
 *
 * Tokens come from the environment only (config names the variable; or DURABLE_CODEMODE_HTTP_TOKENS
 * lists `principal:token` pairs), so config files can be committed.
 */
import { createHash, timingSafeEqual } from 'node:crypto';
import { isIP } from 'node:net';
import { OPERATOR, type Principal, PRINCIPAL_NAME } from '../core/principal.ts';
import type { HttpConfig } from './config.ts';

export const TOKENS_ENV = 'DURABLE_CODEMODE_HTTP_TOKENS';

export class AuthConfigError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'AuthConfigError';
  }
}

/** A token is hashed once; comparing fixed-length digests keeps the comparison constant-time. */
export interface TokenTable {
  principals: Array<{ principal: Principal; digest: Buffer }>;
}

const digest = (token: string) => createHash('sha256').update(token).digest();

/** The tokens from `http.tokens` (each from its env variable) and from DURABLE_CODEMODE_HTTP_TOKENS. */
export function loadTokens(http: HttpConfig, env: NodeJS.ProcessEnv = process.env): TokenTable {
  const pairs: Array<[string, string, string]> = [];
  for (const [name, { tokenEnv }] of Object.entries(http.tokens)) {
    const token = env[tokenEnv];
    if (!token)
      throw new AuthConfigError(
        `http.tokens.${name}: the environment variable ${tokenEnv} is not set. Set it to the principal's token, or remove the entry.`,
      );
    pairs.push([name, token, `http.tokens.${name}`]);
  }
  for (const entry of (env[TOKENS_ENV] ?? '')
    .split(',')
    .map((s) => s.trim())
    .filter(Boolean)) {
    const at = entry.indexOf(':');
    if (at <= 0 || at === entry.length - 1)
      throw new AuthConfigError(
        `${TOKENS_ENV}: "${entry.slice(0, 20)}..." is not principal:token. Use e.g. ${TOKENS_ENV}="alice:TOKEN1,bob:TOKEN2".`,
      );
    pairs.push([entry.slice(0, at), entry.slice(at + 1), TOKENS_ENV]);
  }
  const seen = new Map<string, string>();
  for (const [name, token, where] of pairs) {
    if (!PRINCIPAL_NAME.test(name) || name === OPERATOR.name) {
      throw new AuthConfigError(
        `${where}: "${name}" cannot name a principal: use 1-64 letters, digits, _ . @ -, and not "${OPERATOR.name}".`,
      );
    }
    if (token.length < 16)
      throw new AuthConfigError(
        `${where}: the token of "${name}" is shorter than 16 characters; use a long random one (e.g. openssl rand -hex 32).`,
      );
    const other = seen.get(token);
    if (other !== undefined && other !== name)
      throw new AuthConfigError(`${where}: "${name}" and "${other}" have the same token; give each principal its own.`);
    seen.set(token, name);
  }
  return {
    principals: [...seen].map(([token, name]) => ({ principal: { name, seesAll: false }, digest: digest(token) })),
  };
}

/**
 * The principal an Authorization header names, or undefined. Every known token is compared, in
 * constant time each, so the answer's timing says nothing about which token came close.
 */
export function authenticate(header: string | undefined, table: TokenTable): Principal | undefined {
  const match = /^Bearer +(\S+) *$/i.exec(header ?? '');
  if (!match) return undefined;
  const presented = digest(match[1]);
  let found: Principal | undefined;
  for (const { principal, digest: known } of table.principals) {
    if (timingSafeEqual(presented, known)) found = principal;
  }
  return found;
}

/** 127.0.0.0/8, ::1 and localhost: only this machine can connect. */
export function isLoopbackHost(host: string): boolean {
  const bare = host.replace(/^\[|\]$/g, '');
  if (bare === 'localhost' || bare === '::1') return true;
  return isIP(bare) === 4 && bare.startsWith('127.');
}
