/** The MCP front end as `dev` and `serve` start it: the tools' dependencies and the HTTP listener. */
import type { Client } from '@temporalio/client';
import { createBlobStore } from '../blobs/index.ts';
import { JobService } from '../jobs/service.ts';
import { readyProviders } from '../providers/ready.ts';
import { SpecSearch } from '../sandbox/search.ts';
import { loadTokens } from '../server/auth.ts';
import { ResultBudget } from '../server/budget.ts';
import { checkHttpBind, type McpHttpOptions, startMcpHttpServer } from '../server/http.ts';
import { exampleCall, type McpDeps } from '../server/mcp.ts';
import { Privacy } from '../privacy/privacy.ts';
import { codecFromEnv, codecKeyFromEnv } from '../temporal/codec.ts';
import type { Config } from './config.ts';

export async function mcpDeps(config: Config, client: Client): Promise<McpDeps> {
  const blobs = createBlobStore(config.blobs, config.dataDir);
  const { specs, upstream } = await readyProviders(config.providers, { cache: blobs });
  // The MCP server only needs the upstream tool lists (for search); calls happen in workers.
  await upstream.close();
  const search = await SpecSearch.create(specs);
  const privacy = new Privacy(config.privacy, { store: blobs, codecKey: codecKeyFromEnv() });
  return {
    jobs: new JobService(client, config, undefined, { privacy }),
    budget: new ResultBudget(config.results.maxTokens, blobs),
    privacy,
    search,
    providers: Object.keys(config.providers),
    defaultWaitSeconds: config.defaultWaitSeconds,
    example: await exampleCall(search),
  };
}

/**
 * The HTTP server's options, checked before anything starts: tokens and the codec key must load, and
 * without tokens the host must be loopback. `origins` are trusted besides http.allowedOrigins.
 */
export function httpOptionsOf(config: Config, host: string, port: number, origins: string[] = []): McpHttpOptions {
  const tokens = loadTokens(config.http);
  checkHttpBind(host, tokens);
  return { host, port, tokens, allowedOrigins: [...config.http.allowedOrigins, ...origins], codec: codecFromEnv() };
}

/** Starts the MCP HTTP server, warning when it runs without authentication. */
export async function serveHttp(deps: McpDeps, options: McpHttpOptions) {
  const http = await startMcpHttpServer(deps, options);
  if (!http.authenticated) {
    console.error(
      `WARNING: the MCP HTTP server has no authentication: it listens on loopback only (${options.host}), and every local caller acts as the operator, who sees all jobs. ` +
        'Set DURABLE_CODEMODE_HTTP_TOKENS="name:TOKEN,..." (or http.tokens in the config) to require bearer tokens.',
    );
  }
  return http;
}
