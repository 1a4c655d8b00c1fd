/**
 * The configured providers, made ready for this process: HTTP APIs with their OpenAPI specs loaded,
 * upstream MCP servers connected with their tools listed. Workers need the sandbox view (which
 * globals, which tools) and the operations (to check requests); the MCP server needs the specs for
 * `search`.
 *
 * A spec that cannot be loaded fails its provider alone (see providers/spec.ts): it is reported
 * through `warn`, and everything else starts.
 */
import type { BlobStore } from '../blobs/store.ts';
import type { SandboxProvider } from '../core/guest-messages.ts';
import { isMcpProvider, type McpProviderConfig, type ProvidersConfig } from './config.ts';
import { UpstreamMcpServers } from './mcp-client.ts';
import { loadSpec, type LoadedSpec, toolsSpec } from './spec.ts';

export interface ReadyProviders {
  specs: LoadedSpec[];
  sandboxProviders: SandboxProvider[];
  upstream: UpstreamMcpServers;
}

export interface ReadyOptions {
  /** Where reduced specs are shared between processes (the blob store); see loadSpec. */
  cache?: BlobStore;
  /** Where failed and defective specs are reported (default: stderr). */
  warn?: (message: string) => void;
}

export async function readyProviders(providers: ProvidersConfig, options: ReadyOptions = {}): Promise<ReadyProviders> {
  const warn = options.warn ?? ((message: string) => console.error(message));
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
        ? toolsSpec(name, tools[name])
        : loadSpec(name, provider.openapi, { timeoutMs: provider.openapiTimeoutMs, cache: options.cache }),
    ),
  );
  for (const spec of specs) {
    if (spec.error) {
      warn(
        `durable-codemode: ${spec.error}. Search shows this as spec.providers.${spec.provider}.error; calls to ${spec.provider} fail with a RequestError (unless validateRequests is false). Fix the spec and restart to retry.`,
      );
    } else if (spec.warnings.length) {
      warn(
        `durable-codemode: the OpenAPI spec of provider "${spec.provider}" (${spec.source}) loaded with ${spec.warnings.length === 1 ? 'a defect' : 'defects'}, kept as unresolved $refs (spec.providers.${spec.provider}.warnings): ${spec.warnings.join('; ')}`,
      );
    }
  }
  const sandboxProviders = entries.map(([name]) =>
    tools[name] ? { name, tools: tools[name].map((t) => t.name) } : { name },
  );
  return { specs, sandboxProviders, upstream };
}
