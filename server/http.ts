/**
 * MCP over Streamable HTTP, stateless: each POST carries a whole JSON-RPC exchange, so any number
 * of server replicas can sit behind a load balancer and a restart loses nothing (jobs live in
 * Temporal, not here). A request answers as one JSON body, unless it carries a progressToken:
 * then the answer is an event stream, so progress notifications can flow before the result.
 *
 * Every request passes server/request-checks.ts first (Host, Origin, bearer token). Without tokens
 * the server only listens on loopback, and its callers act as the operator. The codec endpoint for
 * the Temporal UI lives in server/codec-endpoint.ts.
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { StreamableHTTPServerTransport } from '@modelcontextprotocol/sdk/server/streamableHttp.js';
import { maxRequestBytes, requestTooLarge } from '../jobs/input-limits.ts';
import type { AesGcmCodec } from '../temporal/codec.ts';
import { isLoopbackHost, type TokenTable } from './auth.ts';
import { codecActionOf, serveCodec } from './codec-endpoint.ts';
import { createMcpServer, type McpDeps } from './mcp.ts';
import { admit, type ServerIdentity } from './request-checks.ts';

/** The codec endpoint's bodies: a page of payloads the UI shows. */
const MAX_CODEC_REQUEST_BYTES = 4 * 1024 * 1024;

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
  data?: unknown,
): void {
  res
    .writeHead(status, { 'content-type': 'application/json', ...headers })
    .end(
      JSON.stringify({ jsonrpc: '2.0', error: { code, message, ...(data === undefined ? {} : { data }) }, id: null }),
    );
}

/**
 * The request's body as JSON, read up to `maxBytes` (the largest request whose input can be within
 * limits.maxInputBytes); undefined once an error has been answered.
 */
async function readJsonBody(req: IncomingMessage, res: ServerResponse, maxBytes: number, tooLarge: () => Error) {
  const refuse = () => {
    const { name, message } = tooLarge();
    jsonRpcError(res, 413, -32000, message, { connection: 'close' }, { name });
    req.resume();
  };
  if (Number(req.headers['content-length']) > maxBytes) return refuse();
  const chunks: Buffer[] = [];
  let bytes = 0;
  for await (const chunk of req as AsyncIterable<Buffer>) {
    bytes += chunk.length;
    if (bytes > maxBytes) return refuse();
    chunks.push(chunk);
  }
  try {
    return JSON.parse(Buffer.concat(chunks).toString('utf8')) as unknown;
  } catch {
    jsonRpcError(res, 400, -32700, 'Parse error: the body is not JSON.');
  }
}

/** Whether a JSON-RPC message (or batch) is a request asking for progress notifications. */
function asksForProgress(body: unknown): boolean {
  const messages = Array.isArray(body) ? body : [body];
  return messages.some((m) => {
    const meta = (m as { params?: { _meta?: { progressToken?: unknown } } } | null)?.params?._meta;
    return meta?.progressToken !== undefined && meta.progressToken !== null;
  });
}

/** Throws unless the server may listen on `host` with these tokens: no tokens means loopback only. */
export function checkHttpBind(host: string, tokens: TokenTable | undefined): void {
  if (!isLoopbackHost(host) && !tokens?.principals.length) throw new InsecureBindError(host);
}

export async function startMcpHttpServer(deps: McpDeps, options: McpHttpOptions): Promise<McpHttpServer> {
  checkHttpBind(options.host, options.tokens);
  const tokens = options.tokens?.principals.length ? options.tokens : undefined;
  // The port is known once listening (port 0 picks one).
  const identity = (): ServerIdentity => ({
    host: options.host,
    port: (server.address() as AddressInfo).port,
    tokens,
    allowedOrigins: options.allowedOrigins ?? [],
  });

  const server: Server = createServer((req, res) => void handle(req, res));

  async function handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const path = new URL(req.url ?? '/', 'http://x').pathname;
    const codecAction = codecActionOf(path);
    if (options.codec && codecAction) {
      await serveCodec(options.codec, codecAction, identity(), MAX_CODEC_REQUEST_BYTES, req, res);
      return;
    }
    if (path !== '/mcp') {
      res.writeHead(404, { 'content-type': 'text/plain' }).end('Not found. The MCP endpoint is POST /mcp.\n');
      return;
    }
    const principal = admit(req.headers, identity());
    if (!principal.ok) return jsonRpcError(res, principal.status, principal.code, principal.message, principal.headers);
    if (req.method !== 'POST') {
      // Stateless: no server-initiated streams (GET) and no sessions to delete (DELETE).
      jsonRpcError(res, 405, -32000, 'Method not allowed: this server is stateless; use POST.', { allow: 'POST' });
      return;
    }
    const body = await readJsonBody(req, res, maxRequestBytes(deps.jobs.limits), () =>
      requestTooLarge(deps.jobs.limits),
    );
    if (body === undefined) return;
    const mcp = createMcpServer({ ...deps, jobs: deps.jobs.as(principal.value) });
    // A request that asks for progress notifications is answered as an event stream, so they can reach it.
    const transport = new StreamableHTTPServerTransport({
      sessionIdGenerator: undefined,
      enableJsonResponse: !asksForProgress(body),
    });
    res.on('close', () => {
      void transport.close();
      void mcp.close();
    });
    try {
      await mcp.connect(transport);
      await transport.handleRequest(req, res, body);
    } catch (e) {
      if (!res.headersSent) jsonRpcError(res, 500, -32603, `Internal error: ${(e as Error).message}`);
    }
  }

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
    url: `http://${options.host.includes(':') ? `[${options.host}]` : options.host}:${identity().port}/mcp`,
    authenticated: tokens !== undefined,
    close: () =>
      new Promise((resolve) => {
        server.close(() => resolve());
        server.closeIdleConnections();
      }),
  };
}
