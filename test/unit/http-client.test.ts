/**
 * Outbound requests leave only for the provider's base URL: path tricks are refused before any
 * connection, redirects are handed back instead of followed (so a credential never travels to
 * another host), and the script gets the body, never the response headers. Real local HTTP servers.
 */
import { createServer, type IncomingHttpHeaders, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { HttpEffect } from '../../core/journal.ts';
import { performRequest, resolveProviderUrl } from '../../providers/http-client.ts';
import { HttpProviderConfig } from '../../providers/config.ts';

const TOKEN = 'sk-test-http-client-0123456789';

interface Seen {
  method: string;
  url: string;
  headers: IncomingHttpHeaders;
}

/** A server that records what reached it and answers with `respond`. */
async function recordingServer(respond: (url: string, res: import('node:http').ServerResponse) => void) {
  const seen: Seen[] = [];
  const server: Server = createServer((req, res) => {
    seen.push({ method: req.method!, url: req.url!, headers: req.headers });
    req.resume();
    req.on('end', () => respond(req.url!, res));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return { server, seen, origin: `http://127.0.0.1:${(server.address() as AddressInfo).port}` };
}

let api: Awaited<ReturnType<typeof recordingServer>>;
let elsewhere: Awaited<ReturnType<typeof recordingServer>>;

beforeAll(async () => {
  elsewhere = await recordingServer((_url, res) =>
    res.writeHead(200, { 'content-type': 'application/json' }).end('{"stolen":true}'),
  );
  api = await recordingServer((url, res) => {
    const path = new URL(url, 'http://x').pathname;
    if (path === '/api/v2/redirect-away') res.writeHead(302, { location: `${elsewhere.origin}/steal` }).end();
    else if (path === '/api/v2/redirect-307')
      res.writeHead(307, { location: `${elsewhere.origin}/steal` }).end('{"moved":true}');
    else if (path === '/api/v2/redirect-here') res.writeHead(301, { location: '/api/v2/ok' }).end();
    else if (path === '/api/v2/denied')
      res
        .writeHead(401, {
          'www-authenticate': 'Bearer error="invalid_token"',
          'set-cookie': 'sid=header-secret-401',
          'content-type': 'application/json',
        })
        .end('{"error":"denied"}');
    else
      res
        .writeHead(200, {
          'content-type': 'application/json',
          'set-cookie': 'sid=header-secret-200',
          'x-internal-token': 'header-secret-x',
        })
        .end(JSON.stringify({ ok: true, path }));
  });
});

afterAll(() => {
  api?.server.close();
  elsewhere?.server.close();
});

const provider = () =>
  HttpProviderConfig.parse({
    openapi: 'unused.json',
    baseUrl: `${api.origin}/api/v2`,
    auth: { type: 'bearer', tokenEnv: 'HTTP_CLIENT_TEST_TOKEN' },
    timeoutMs: 5_000,
  });
const get = (path: string): HttpEffect => ({ kind: 'http', provider: 'api', method: 'GET', path });
const send = (path: string) =>
  performRequest(provider(), get(path), 'job-1/0', undefined, { HTTP_CLIENT_TEST_TOKEN: TOKEN });

describe('resolveProviderUrl', () => {
  const base = 'http://127.0.0.1:4001/api/v2';

  it.each([
    ['/leads', '/api/v2/leads'],
    ['/leads/42?expand=notes', '/api/v2/leads/42'],
    ['/@evil.example/x', '/api/v2/@evil.example/x'],
    ['/files/a%2Fb', '/api/v2/files/a%2Fb'],
    ['/%EF%BC%8E%EF%BC%8E/x', '/api/v2/%EF%BC%8E%EF%BC%8E/x'], // fullwidth dots are not dots
    ['/..x/y', '/api/v2/..x/y'],
  ])('keeps %s under the base URL', (path, pathname) => {
    const url = resolveProviderUrl(base, path);
    expect(url.origin).toBe('http://127.0.0.1:4001');
    expect(url.pathname).toBe(pathname);
  });

  it.each([
    'http://evil.example/x',
    'https://evil.example',
    '//evil.example/x',
    'evil.example/x',
    '@evil.example/x',
    '',
    '/../x',
    '/a/../../x',
    '/./x',
    '/%2e%2e/x',
    '/%2E%2E/x',
    '/.%2e/x',
    '/a/%2e%2e%2f%2e%2e/x',
    '/..%2fx',
    '/..%5cx',
    '/\\evil.example',
    '/%5cevil.example',
    '/x#fragment',
    '/x y',
    '/x\ny',
    '/x\t',
    '/%zz',
  ])('refuses %j', (path) => {
    expect(() => resolveProviderUrl(base, path)).toThrow(
      /must be a plain absolute path|leaves the provider's base URL|not valid percent-encoding/,
    );
  });
});

describe('performRequest', () => {
  it('refuses traversal before connecting anywhere', async () => {
    const before = api.seen.length;
    for (const path of [
      '/../x',
      '/%2e%2e/x',
      `${elsewhere.origin}/steal`,
      `//127.0.0.1:${new URL(elsewhere.origin).port}/steal`,
    ]) {
      expect(await send(path)).toMatchObject({
        ok: false,
        error: { name: 'RequestError', message: expect.stringMatching(/refused/) },
      });
    }
    expect(api.seen.length).toBe(before);
    expect(elsewhere.seen).toHaveLength(0);
  });

  it('does not follow redirects, to another port or even its own base URL', async () => {
    for (const path of ['/redirect-away', '/redirect-307', '/redirect-here']) {
      const outcome = await send(path);
      expect(outcome).toMatchObject({ ok: false, error: { name: 'ApiError', status: expect.any(Number) } });
      expect((outcome as { error: { status: number } }).error.status).toBeGreaterThanOrEqual(300);
    }
    expect(elsewhere.seen).toHaveLength(0);
    expect(api.seen.filter((s) => s.url === '/api/v2/ok')).toHaveLength(0);
  });

  it('adds the credential on the way out and hands back only the body, never the headers', async () => {
    const ok = await send('/whoami');
    expect(ok).toEqual({ ok: true, value: { ok: true, path: '/api/v2/whoami' } });
    expect(api.seen.at(-1)!.headers.authorization).toBe(`Bearer ${TOKEN}`);
    const denied = await send('/denied');
    expect(denied).toMatchObject({ ok: false, error: { status: 401, body: { error: 'denied' } } });
    for (const outcome of [ok, denied]) {
      const text = JSON.stringify(outcome);
      for (const secret of [TOKEN, 'header-secret', 'invalid_token', 'set-cookie']) expect(text).not.toContain(secret);
    }
  });

  it('names a missing credential by its variable, and sends nothing', async () => {
    const before = api.seen.length;
    const outcome = await performRequest(provider(), get('/whoami'), 'job-1/0', undefined, {});
    expect(outcome).toMatchObject({
      ok: false,
      error: {
        name: 'RequestError',
        message: expect.stringMatching(/set the environment variable HTTP_CLIENT_TEST_TOKEN for the worker/),
      },
    });
    expect(api.seen.length).toBe(before);
  });
});
