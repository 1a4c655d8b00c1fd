/**
 * MCP over Streamable HTTP, stateless: each POST carries a whole JSON-RPC exchange, so any number
 * of server replicas can sit behind a load balancer and a restart loses nothing (jobs live in
 * Temporal, not here).
 *
 * Before the MCP transport sees a request: the Host header must name this server when it listens on
 * loopback (DNS rebinding), a browser's Origin must be one we trust, and with tokens configured the
 * bearer token names the principal the request acts for. Without tokens the server only listens on
 * loopback, and its callers act as the operator.
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { StreamableHTTPServerTransport } from '@modelcontextprotocol/sdk/server/streamableHttp.js';
import { OPERATOR, type Principal } from '../core/principal.ts';
import type { AesGcmCodec } from '../temporal/codec.ts';
import { authenticate, isLoopbackHost, type TokenTable } from './auth.ts';
import { createMcpServer, type McpDeps } from './mcp.ts';

/** Scripts are small; anything near this is a mistake or an attack. Larger bodies get 413. */
const MAX_REQUEST_BYTES = 4 * 1024 * 1024;

export interface McpHttpServer {
  url: string;
  /** False when anyone who can reach the (loopback) port acts as the operator. */
  authenticated: boolean;
  close(): Promise<void>;
}

export interface McpHttpOptions {
  host: string;
  port: number;
  /** Bearer tokens by principal (server/auth.ts loadTokens); none is allowed on loopback only. */
  tokens?: TokenTable;
  /** Browser origins allowed besides the server's own (e.g. the Temporal UI's, for the codec endpoint). */
  allowedOrigins?: string[];
  /** Serve Temporal's remote codec protocol at /codec/encode and /codec/decode, for the operator. */
  codec?: AesGcmCodec;
}

export class InsecureBindError extends Error {
  constructor(host: string) {
    super(
      `Refusing to serve MCP on ${host} without authentication: anyone who can reach the port could run scripts and read every job. ` +
        'Set bearer tokens (DURABLE_CODEMODE_HTTP_TOKENS="alice:TOKEN,..." or http.tokens in the config), or bind to 127.0.0.1.',
    );
    this.name = 'InsecureBindError';
  }
}

function jsonRpcError(
  res: ServerResponse,
  status: number,
  code: number,
  message: string,
  headers: Record<string, string> = {},
): void {
  res
    .writeHead(status, { 'content-type': 'application/json', ...headers })
    .end(JSON.stringify({ jsonrpc: '2.0', error: { code, message }, id: null }));
}

/** Throws unless the server may listen on `host` with these tokens: no tokens means loopback only. */
export function checkHttpBind(host: string, tokens: TokenTable | undefined): void {
  if (!isLoopbackHost(host) && !tokens?.principals.length) throw new InsecureBindError(host);
}

export async function startMcpHttpServer(deps: McpDeps, options: McpHttpOptions): Promise<McpHttpServer> {
  checkHttpBind(options.host, options.tokens);
  const loopback = isLoopbackHost(options.host);
  const tokens = options.tokens?.principals.length ? options.tokens : undefined;

  /** The Host headers a loopback server answers to: anything else is a rebound DNS name. */
  const loopbackHosts = () =>
    [
      ...new Set(['127.0.0.1', 'localhost', '[::1]', options.host.includes(':') ? `[${options.host}]` : options.host]),
    ].map((h) => `${h}:${port()}`);

  /** Whether Host and Origin are ours; if not, the refusal is already answered. */
  function trusted(req: IncomingMessage, res: ServerResponse): boolean {
    const host = req.headers.host ?? '';
    if (loopback && !loopbackHosts().includes(host)) {
      jsonRpcError(
        res,
        403,
        -32000,
        `Invalid Host header: ${host}. This server only answers to ${loopbackHosts().join(', ')}.`,
      );
      return false;
    }
    const origin = req.headers.origin;
    if (origin !== undefined) {
      const own = loopback ? loopbackHosts().map((h) => `http://${h}`) : [`http://${host}`, `https://${host}`];
      if (![...own, ...(options.allowedOrigins ?? [])].includes(origin)) {
        jsonRpcError(
          res,
          403,
          -32000,
          `Origin ${origin} is not allowed. Add it to http.allowedOrigins to let that web page call this server.`,
        );
        return false;
      }
    }
    return true;
  }

  /** Who the request acts for, or undefined with the refusal already answered. */
  function admit(req: IncomingMessage, res: ServerResponse): Principal | undefined {
    if (!trusted(req, res)) return undefined;
    if (!tokens) return OPERATOR;
    const principal = authenticate(req.headers.authorization, tokens);
    if (!principal) {
      jsonRpcError(
        res,
        401,
        -32001,
        'Unauthorized: send "Authorization: Bearer <token>" with a token configured for this server.',
        {
          'www-authenticate': 'Bearer realm="durable-codemode"',
        },
      );
    }
    return principal;
  }

  const server: Server = createServer((req, res) => void handle(req, res));

  async function handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const path = new URL(req.url ?? '/', 'http://x').pathname;
    const codecAction = /^\/codec\/(encode|decode)$/.exec(path)?.[1] as 'encode' | 'decode' | undefined;
    if (options.codec && codecAction) {
      await serveCodec(options.codec, codecAction, req, res);
      return;
    }
    if (path !== '/mcp') {
      res.writeHead(404, { 'content-type': 'text/plain' }).end('Not found. The MCP endpoint is POST /mcp.\n');
      return;
    }
    const principal = admit(req, res);
    if (!principal) return;
    if (req.method !== 'POST') {
      // Stateless: no server-initiated streams (GET) and no sessions to delete (DELETE).
      jsonRpcError(res, 405, -32000, 'Method not allowed: this server is stateless; use POST.', { allow: 'POST' });
      return;
    }
    const mcp = createMcpServer({ ...deps, jobs: deps.jobs.as(principal) });
    const transport = new StreamableHTTPServerTransport({
      sessionIdGenerator: undefined,
      enableJsonResponse: true,
      maxRequestBodySize: MAX_REQUEST_BYTES,
    });
    res.on('close', () => {
      void transport.close();
      void mcp.close();
    });
    try {
      await mcp.connect(transport);
      await transport.handleRequest(req, res);
    } catch (e) {
      if (!res.headersSent) jsonRpcError(res, 500, -32603, `Internal error: ${(e as Error).message}`);
    }
  }

  /**
   * Temporal's remote codec protocol, for the Temporal UI (a page on another origin, hence CORS).
   * It decrypts every job's payloads, so only the operator may use it: a server with tokens refuses.
   */
  async function serveCodec(
    codec: AesGcmCodec,
    action: 'encode' | 'decode',
    req: IncomingMessage,
    res: ServerResponse,
  ): Promise<void> {
    if (!trusted(req, res)) return;
    const cors: Record<string, string> = req.headers.origin
      ? {
          'access-control-allow-origin': req.headers.origin,
          'access-control-allow-credentials': 'true',
          'access-control-allow-methods': 'POST, OPTIONS',
          'access-control-allow-headers': 'content-type, x-namespace, authorization',
          vary: 'origin',
        }
      : {};
    if (req.method === 'OPTIONS') return void res.writeHead(204, cors).end();
    const principal = admit(req, res);
    if (!principal) return;
    const fail = (status: number, message: string) =>
      res.writeHead(status, { ...cors, 'content-type': 'application/json' }).end(JSON.stringify({ message }));
    if (!principal.seesAll)
      return void fail(
        403,
        'The codec endpoint decrypts every job, so it is for the operator only: serve it from a loopback server without tokens.',
      );
    if (req.method !== 'POST') return void fail(405, 'Use POST with {"payloads": [...]}.');
    let body = '';
    for await (const chunk of req) {
      body += chunk;
      if (body.length > MAX_REQUEST_BYTES) return void fail(413, `The body is larger than ${MAX_REQUEST_BYTES} bytes.`);
    }
    let answer;
    try {
      answer = JSON.stringify(await codec.handle(action, body));
    } catch (e) {
      return void fail(400, `Cannot ${action}: ${(e as Error).message}`);
    }
    res.writeHead(200, { ...cors, 'content-type': 'application/json' }).end(answer);
  }

  const port = () => (server.address() as AddressInfo).port;
  await new Promise<void>((resolve, reject) => {
    server.once('error', (e: NodeJS.ErrnoException) =>
      reject(
        e.code === 'EADDRINUSE'
          ? new Error(
              `MCP HTTP server could not listen on ${options.host}:${options.port}: port in use. Pass --port N.`,
            )
          : e,
      ),
    );
    server.listen(options.port, options.host, resolve);
  });
  return {
    url: `http://${options.host.includes(':') ? `[${options.host}]` : options.host}:${port()}/mcp`,
    authenticated: tokens !== undefined,
    close: () =>
      new Promise((resolve) => {
        server.close(() => resolve());
        server.closeIdleConnections();
      }),
  };
}
