/**
 * The configured providers, made ready for this process: HTTP APIs with their OpenAPI specs loaded,
 * upstream MCP servers connected with their tools listed. Workers need the sandbox view (which
 * globals, which tools); the MCP server needs the specs for `search`.
 */
import type { SandboxProvider } from '../core/guest-messages.ts';
import { isMcpProvider, type McpProviderConfig, type ProvidersConfig } from './config.ts';
import { UpstreamMcpServers } from './mcp-client.ts';
import { loadProviderSpec, type ProviderSpec } from './spec.ts';

export interface ReadyProviders {
  specs: ProviderSpec[];
  sandboxProviders: SandboxProvider[];
  upstream: UpstreamMcpServers;
}

export async function readyProviders(providers: ProvidersConfig): Promise<ReadyProviders> {
  const entries = Object.entries(providers);
  const mcp = Object.fromEntries(entries.filter((e): e is [string, McpProviderConfig] => isMcpProvider(e[1])));
  const upstream = new UpstreamMcpServers(mcp);
  const tools = await upstream.listAll().catch(async (e) => {
    await upstream.close();
    throw e;
  });
  const specs = await Promise.all(
    entries.map(async ([name, provider]) =>
      isMcpProvider(provider)
        ? { provider: name, title: `MCP server ${name}`, operations: [], tools: tools[name] }
        : loadProviderSpec(name, provider.openapi),
    ),
  );
  const sandboxProviders = entries.map(([name]) =>
    tools[name] ? { name, tools: tools[name].map((t) => t.name) } : { name },
  );
  return { specs, sandboxProviders, upstream };
}
