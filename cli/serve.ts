/** `durable-codemode serve`: the MCP server over stdio or Streamable HTTP, against an existing Temporal server. */
import v8 from 'node:v8';
import vm from 'node:vm';
import { serveStdio } from '../server/stdio.ts';
import { connectClient } from '../temporal/connection.ts';
import { httpOptionsOf, mcpDeps, serveHttp } from './mcp-front.ts';
import { portOption, UsageError, type Values } from './options.ts';
import { loadRuntimeConfig } from './runtime-config.ts';
import { onShutdown } from './shutdown.ts';

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

/**
 * Starting `serve` leaves tens of MB of garbage in V8's heap (loading modules, parsing the config and
 * the specs) that V8 may keep committed for as long as the server idles. One last-resort collection
 * once it is ready gives that back, so an idle MCP server holds only what it uses. Node has no call
 * for it: --expose-gc is on just long enough to take gc() from a fresh context (no sandbox context
 * is being created then: `serve` runs no jobs).
 */
function releaseStartupMemory(): void {
  v8.setFlagsFromString('--expose-gc');
  const gc = vm.runInNewContext('gc') as (options: object) => void;
  v8.setFlagsFromString('--no-expose-gc');
  gc({ type: 'major', execution: 'sync', flavor: 'last-resort' });
}
