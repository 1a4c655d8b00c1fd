/**
 * The environment variables the providers' credentials come from, checked when a worker starts: a
 * missing one is reported then (which provider, which variable), not at the job's first call.
 */
import { type HttpProviderConfig, isMcpProvider, type ProviderAuth, type ProvidersConfig } from './config.ts';

export interface MissingVariable {
  provider: string;
  /** The config key naming it, e.g. `auth.tokenEnv`. */
  setting: string;
  variable: string;
  /** An auth secret (every call fails without it), or only passed through to an MCP server's process. */
  kind: 'credential' | 'passed-through';
}

function authVariable(auth: ProviderAuth): { setting: string; variable: string } {
  return auth.type === 'bearer'
    ? { setting: 'auth.tokenEnv', variable: auth.tokenEnv }
    : { setting: 'auth.valueEnv', variable: auth.valueEnv };
}

export function missingVariables(providers: ProvidersConfig, env: NodeJS.ProcessEnv = process.env): MissingVariable[] {
  const missing: MissingVariable[] = [];
  for (const [provider, config] of Object.entries(providers)) {
    const mcp = isMcpProvider(config) ? config.mcp : undefined;
    const auth = mcp ? ('url' in mcp ? mcp.auth : undefined) : (config as HttpProviderConfig).auth;
    if (auth) {
      const { setting, variable } = authVariable(auth);
      if (!env[variable])
        missing.push({ provider, setting: `${mcp ? 'mcp.' : ''}${setting}`, variable, kind: 'credential' });
    }
    if (mcp && 'env' in mcp)
      for (const variable of mcp.env)
        if (env[variable] === undefined)
          missing.push({ provider, setting: 'mcp.env', variable, kind: 'passed-through' });
  }
  return missing;
}
