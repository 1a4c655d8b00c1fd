/** A worker refuses to start without its providers' credentials, naming each provider and variable. */
import type { ProvidersConfig } from '../providers/config.ts';
import { missingVariables } from '../providers/credentials.ts';

export class MissingCredentialsError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'MissingCredentialsError';
  }
}

/** Throws when a credential is missing; warns about unset variables passed through to an MCP server. */
export function checkCredentials(providers: ProvidersConfig, env: NodeJS.ProcessEnv = process.env): void {
  const missing = missingVariables(providers, env);
  for (const m of missing.filter((m) => m.kind === 'passed-through'))
    console.error(
      `warning: provider "${m.provider}" passes ${m.variable} to its MCP server (${m.setting}), but it is not set here.`,
    );
  const credentials = missing.filter((m) => m.kind === 'credential');
  if (credentials.length)
    throw new MissingCredentialsError(
      `Missing credentials; every call to these providers would fail:\n${credentials
        .map(
          (m) => `  - provider "${m.provider}": ${m.setting} names ${m.variable}, which is not set in this environment`,
        )
        .join(
          '\n',
        )}\nSet ${credentials.length > 1 ? 'them' : 'it'} for the worker (e.g. export ${credentials[0].variable}=...), or fix the config.`,
    );
}
