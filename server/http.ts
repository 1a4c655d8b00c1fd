/**
 * MCP over Streamable HTTP, stateless: each POST carries a whole JSON-RPC exchange, so any number
 * of server replicas can sit behind a load balancer and a restart loses nothing (jobs live in
 * Temporal, not here).
 */
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { StreamableHTTPServerTransport } from '@modelcontextprotocol/sdk/server/streamableHttp.js';
import { createMcpServer, type McpDeps } from './mcp.ts';

/** Scripts are small; anything near this is a mistake or an attack. */
const MAX_REQUEST_BYTES = 4 * 1024 * 1024;

export interface McpHttpServer {
  url: string;
  close(): Promise<void>;
}

export async function startMcpHttpServer(deps: McpDeps, options: { host: string; port: number }): Promise<McpHttpServer> {
  const loopback = ['127.0.0.1', 'localhost', '::1'].includes(options.host);
  const server: Server = createServer(async (req, res) => {
    const path = new URL(req.url ?? '/', 'http://x').pathname;
    if (path !== '/mcp') {
      res.writeHead(404, { 'content-type': 'text/plain' }).end('Not found. The MCP endpoint is POST /mcp.\n');
      return;
    }
    if (req.method !== 'POST') {
      // Stateless: no server-initiated streams (GET) and no sessions to delete (DELETE).
      res.writeHead(405, { allow: 'POST', 'content-type': 'application/json' }).end(
        JSON.stringify({ jsonrpc: '2.0', error: { code: -32000, message: 'Method not allowed: this server is stateless; use POST.' }, id: null }),
      );
      return;
    }
    const mcp = createMcpServer(deps);
    const transport = new StreamableHTTPServerTransport({
      sessionIdGenerator: undefined,
      enableJsonResponse: true,
      maxRequestBodySize: MAX_REQUEST_BYTES,
      // On loopback, refuse foreign Host headers so a web page cannot reach us through DNS rebinding.
      ...(loopback ? { enableDnsRebindingProtection: true, allowedHosts: [`127.0.0.1:${port()}`, `localhost:${port()}`, `[::1]:${port()}`] } : {}),
    });
    res.on('close', () => {
      void transport.close();
      void mcp.close();
    });
    try {
      await mcp.connect(transport);
      await transport.handleRequest(req, res);
    } catch (e) {
      if (!res.headersSent) {
        res.writeHead(500, { 'content-type': 'application/json' }).end(
          JSON.stringify({ jsonrpc: '2.0', error: { code: -32603, message: `Internal error: ${(e as Error).message}` }, id: null }),
        );
      }
    }
  });
  const port = () => (server.address() as AddressInfo).port;
  await new Promise<void>((resolve, reject) => {
    server.once('error', (e: NodeJS.ErrnoException) =>
      reject(e.code === 'EADDRINUSE' ? new Error(`MCP HTTP server could not listen on ${options.host}:${options.port}: port in use. Pass --port N.`) : e),
    );
    server.listen(options.port, options.host, resolve);
  });
  return {
    url: `http://${options.host.includes(':') ? `[${options.host}]` : options.host}:${port()}/mcp`,
    close: () => new Promise((resolve) => server.close(() => resolve())),
  };
}
