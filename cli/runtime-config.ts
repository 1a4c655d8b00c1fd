/** The config a command runs with: the file's, with the bundled demo APIs as providers when it names none. */
import { DEMO_PORTS, demoProvidersConfig } from '../demo-apis/providers.ts';
import { type Config, loadConfig, withProviders } from './config.ts';
import type { Values } from './options.ts';

export interface RuntimeConfig {
  config: Config;
  /** No providers configured: the demo APIs stand in (`dev` starts them). */
  usesDemo: boolean;
}

/** The config file named by --config or DURABLE_CODEMODE_CONFIG (defaults without one). */
export function configOf(values: Values): Config {
  return loadConfig((values.config as string | undefined) ?? process.env.DURABLE_CODEMODE_CONFIG);
}

/** With no providers configured, the demo APIs at these ports are the providers. */
export function runtimeConfig(config: Config, demoPorts = DEMO_PORTS): RuntimeConfig {
  if (Object.keys(config.providers).length > 0) return { config, usesDemo: false };
  const at = (port: number) => ({ url: `http://127.0.0.1:${port}` });
  return {
    config: withProviders(config, demoProvidersConfig({ crm: at(demoPorts.crm), sheets: at(demoPorts.sheets) })),
    usesDemo: true,
  };
}

export function loadRuntimeConfig(values: Values): RuntimeConfig {
  return runtimeConfig(configOf(values));
}
