/** The HTTP front end's request checks, as pure functions over headers (the transport is tested in integration). */
import { describe, expect, it } from 'vitest';
import { OPERATOR } from '../../core/principal.ts';
import { loadTokens } from '../../server/auth.ts';
import { admit, checkHost, checkOrigin, type ServerIdentity } from '../../server/request-checks.ts';

const loopback: ServerIdentity = { host: '127.0.0.1', port: 3000, allowedOrigins: ['http://localhost:8233'] };
const tokens = loadTokens(
  { host: '0.0.0.0', port: 3000, tokens: {}, allowedOrigins: [] },
  { DURABLE_CODEMODE_HTTP_TOKENS: 'alice:alice-token-0123456789' },
);
const public_: ServerIdentity = { host: '0.0.0.0', port: 3000, allowedOrigins: [], tokens };

describe('request checks', () => {
  it('answers on loopback only to its own Host names (DNS rebinding)', () => {
    for (const host of ['127.0.0.1:3000', 'localhost:3000', '[::1]:3000'])
      expect(checkHost({ host }, loopback).ok).toBe(true);
    const rebound = checkHost({ host: 'evil.example:3000' }, loopback);
    expect(rebound).toMatchObject({
      ok: false,
      status: 403,
      message: expect.stringContaining('Invalid Host header: evil.example:3000'),
    });
    expect(checkHost({ host: 'mcp.example.com' }, public_).ok).toBe(true);
  });

  it("takes a browser's Origin only when it is the server's own or allowed", () => {
    expect(checkOrigin({ host: 'localhost:3000' }, loopback).ok).toBe(true);
    expect(checkOrigin({ host: 'localhost:3000', origin: 'http://localhost:3000' }, loopback).ok).toBe(true);
    expect(checkOrigin({ host: 'localhost:3000', origin: 'http://localhost:8233' }, loopback).ok).toBe(true);
    expect(checkOrigin({ host: 'localhost:3000', origin: 'https://evil.example' }, loopback)).toMatchObject({
      ok: false,
      status: 403,
      message: expect.stringContaining('http.allowedOrigins'),
    });
    expect(checkOrigin({ host: 'mcp.example.com', origin: 'https://mcp.example.com' }, public_).ok).toBe(true);
  });

  it('makes an unauthenticated loopback caller the operator, and needs a known token otherwise', () => {
    expect(admit({ host: '127.0.0.1:3000' }, loopback)).toEqual({ ok: true, value: OPERATOR });
    expect(admit({ host: 'x', authorization: 'Bearer alice-token-0123456789' }, public_)).toEqual({
      ok: true,
      value: { name: 'alice', seesAll: false },
    });
    const refused = admit({ host: 'x', authorization: 'Bearer wrong-token-0123456789' }, public_);
    expect(refused).toMatchObject({
      ok: false,
      status: 401,
      headers: { 'www-authenticate': expect.stringContaining('Bearer') },
    });
  });

  it('reports the first failing check', () => {
    const result = admit({ host: 'evil.example:3000', origin: 'https://evil.example' }, loopback);
    expect(result).toMatchObject({ ok: false, message: expect.stringContaining('Invalid Host header') });
  });
});
