/**
 * Upstream MCP servers as providers: this process's connections to them, their tool lists (for the
 * sandbox globals and for search), and tool calls performed on a script's behalf. Each process
 * (worker, MCP server) connects on first use and reconnects after a failure.
 */
import type { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { productError } from '../core/errors.ts';
import type { EffectOutcome, Json } from '../core/journal.ts';
import { PRODUCT_VERSION } from '../core/version.ts';
import { authOf, TransientHttpError } from './http-client.ts';
import type { McpProviderConfig } from './config.ts';

export interface UpstreamTool {
  name: string;
  description?: string;
  inputSchema?: unknown;
  outputSchema?: unknown;
}

const MAX_ERROR_CHARS = 2_000;

export class UpstreamMcpServers {
  private readonly providers: Record<string, McpProviderConfig>;
  private readonly env: NodeJS.ProcessEnv;
  private readonly clients = new Map<string, Promise<Client>>();

  constructor(providers: Record<string, McpProviderConfig>, env: NodeJS.ProcessEnv = process.env) {
    this.providers = providers;
    this.env = env;
  }

  get names(): string[] {
    return Object.keys(this.providers);
  }

  /** Every upstream server's tools; a server that cannot be reached fails with its name in the message. */
  async listAll(): Promise<Record<string, UpstreamTool[]>> {
    const entries = await Promise.all(
      this.names.map(async (name) => {
        try {
          const { tools } = await (await this.client(name)).listTools();
          return [
            name,
            tools.map(({ name, description, inputSchema, outputSchema }) => ({
              name,
              description,
              inputSchema,
              outputSchema,
            })),
          ] as const;
        } catch (e) {
          this.forget(name);
          throw new Error(`Cannot list the tools of MCP provider "${name}": ${(e as Error).message}`);
        }
      }),
    );
    return Object.fromEntries(entries);
  }

  /**
   * Calls a tool. A tool's own error (isError) comes back as `{ ok: false }` for the script to
   * catch; a broken connection throws TransientHttpError so Temporal retries on a new connection.
   */
  async call(provider: string, tool: string, args: Json | undefined, signal?: AbortSignal): Promise<EffectOutcome> {
    const config = this.providers[provider];
    if (!config) throw new Error(`unknown MCP provider "${provider}"`);
    let result: Awaited<ReturnType<Client['callTool']>>;
    try {
      const client = await this.client(provider);
      result = await client.callTool({ name: tool, arguments: (args ?? {}) as Record<string, unknown> }, undefined, {
        timeout: config.timeoutMs,
        signal,
      });
    } catch (e) {
      const message = (e as Error).message;
      // Protocol-level refusals (unknown tool, invalid arguments) are the script's to handle.
      if (/MCP error -3260[12]/.test(message))
        return { ok: false, error: productError('ToolError', `${provider}.${tool}: ${message}`) };
      this.forget(provider);
      throw new TransientHttpError(`${provider}.${tool}: ${message}`);
    }
    const value = resultValue(result);
    if (result.isError) {
      const text = typeof value === 'string' ? value : JSON.stringify(value);
      return {
        ok: false,
        error: {
          ...productError('ToolError', `${provider}.${tool} failed: ${text.slice(0, MAX_ERROR_CHARS)}`),
          body: value,
        },
      };
    }
    return { ok: true, value };
  }

  async close(): Promise<void> {
    const clients = [...this.clients.values()];
    this.clients.clear();
    await Promise.all(
      clients.map((c) =>
        c.then(
          (client) => client.close(),
          () => undefined,
        ),
      ),
    );
  }

  private client(name: string): Promise<Client> {
    let client = this.clients.get(name);
    if (!client) {
      client = this.connect(name);
      client.catch(() => this.forget(name));
      this.clients.set(name, client);
    }
    return client;
  }

  private forget(name: string): void {
    const client = this.clients.get(name);
    this.clients.delete(name);
    void client?.then(
      (c) => c.close(),
      () => undefined,
    );
  }

  private async connect(name: string): Promise<Client> {
    const { mcp } = this.providers[name];
    // The MCP SDK's client loads on the first connection: a worker without MCP providers never needs it.
    const { Client } = await import('@modelcontextprotocol/sdk/client/index.js');
    const client = new Client({ name: 'durable-codemode', version: PRODUCT_VERSION });
    if ('command' in mcp) {
      const env: Record<string, string> = { PATH: this.env.PATH ?? '' };
      for (const key of mcp.env) if (this.env[key] !== undefined) env[key] = this.env[key]!;
      const [command, ...args] = mcp.command;
      const { StdioClientTransport } = await import('@modelcontextprotocol/sdk/client/stdio.js');
      await client.connect(new StdioClientTransport({ command: command, args, env, stderr: 'inherit' }));
    } else {
      const { headers } = authOf(mcp.auth, this.env);
      const { StreamableHTTPClientTransport } = await import('@modelcontextprotocol/sdk/client/streamableHttp.js');
      await client.connect(new StreamableHTTPClientTransport(new URL(mcp.url), { requestInit: { headers } }));
    }
    return client;
  }
}

/** A tool result as one JSON value: structured content if any, else the text (parsed when it is JSON). */
function resultValue(result: Awaited<ReturnType<Client['callTool']>>): Json {
  if (result.structuredContent !== undefined) return result.structuredContent as Json;
  const content = (result.content ?? []) as Array<{ type: string; text?: string }>;
  const texts = content.filter((c) => c.type === 'text').map((c) => c.text ?? '');
  if (content.length === 1 && texts.length === 1) {
    try {
      return JSON.parse(texts[0]) as Json;
    } catch {
      return texts[0];
    }
  }
  return content;
}
