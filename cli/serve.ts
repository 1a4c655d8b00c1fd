/** `durable-codemode serve`: the MCP server over stdio or Streamable HTTP, against an existing Temporal server. */
import { serveStdio } from '../server/stdio.ts';
import { connectClient } from '../temporal/connection.ts';
import { httpOptionsOf, mcpDeps, serveHttp } from './mcp-front.ts';
import { portOption, UsageError, type Values } from './options.ts';
import { loadRuntimeConfig } from './runtime-config.ts';
import { onShutdown } from './shutdown.ts';
import { releaseStartupMemory } from './process-memory.ts';

export async function run(values: Values): Promise<void> {
  if (Boolean(values.stdio) === Boolean(values.http))
    throw new UsageError('serve needs exactly one of --stdio or --http');
  const { config } = loadRuntimeConfig(values);
  const httpOptions = values.http
    ? httpOptionsOf(
        config,
        (values.host as string | undefined) ?? config.http.host,
        portOption(values, 'port', config.http.port),
      )
    : undefined;
  const client = await connectClient(config.temporal);
  const deps = await mcpDeps(config, client);
  const where = `Temporal ${config.temporal.address}, task queue ${config.temporal.taskQueue}, providers: ${deps.providers.join(', ')}`;
  if (!httpOptions) {
    // stdout belongs to the protocol: everything human goes to stderr.
    await serveStdio(deps);
    releaseStartupMemory();
    console.error(`durable-codemode MCP server on stdio (${where})`);
    return;
  }
  const http = await serveHttp(deps, httpOptions);
  releaseStartupMemory();
  console.error(`durable-codemode MCP server at ${http.url} (${where})`);
  onShutdown(() => http.close());
}
