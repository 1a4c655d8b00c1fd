/** Config errors an operator can act on: the key path, what is wrong there, and the closest valid key. */
import { describe, expect, it } from 'vitest';
import { closest } from '../../core/config-object.ts';
import { parseConfig } from '../../cli/config.ts';
import { missingVariables } from '../../providers/credentials.ts';

function problems(raw: unknown): string[] {
  try {
    parseConfig(raw, 'config.json', {});
  } catch (e) {
    const [head, ...lines] = (e as Error).message.split('\n');
    expect(head).toBe('Invalid config in config.json:');
    return lines.map((l) => l.replace(/^ {2}- /, ''));
  }
  throw new Error('the config was accepted');
}

const crm = { openapi: 'crm.json', baseUrl: 'http://127.0.0.1:1' };

describe('config errors', () => {
  it('rejects an unknown top-level key, naming the one meant', () => {
    expect(problems({ provider: { crm } })).toEqual([
      '(top level): unknown key "provider" (did you mean "providers"?)',
    ]);
  });

  it('rejects unknown keys in every section', () => {
    expect(
      problems({
        temporal: { taskqueue: 'q' },
        limits: { memoryMB: 64 },
        http: { prot: 1 },
        worker: { maxSessions: 1 },
        results: { maxToken: 1000 },
        blobs: { treshold: 1 },
      }),
    ).toEqual([
      'temporal: unknown key "taskqueue" (did you mean "taskQueue"?)',
      'limits: unknown key "memoryMB" (did you mean "memoryMb"?)',
      'blobs: unknown key "treshold" (did you mean "thresholdBytes"?)',
      'http: unknown key "prot" (did you mean "port"?)',
      'worker: unknown key "maxSessions" (did you mean "maxConcurrentSessions"?)',
      'results: unknown key "maxToken" (did you mean "maxTokens"?)',
    ]);
  });

  it('lists the valid keys when none is close', () => {
    expect(problems({ providers: { crm: { ...crm, retry: { zzz: 1 } } } })).toEqual([
      'providers.crm.retry: unknown key "zzz" (valid keys: maximumAttempts, initialIntervalMs, maximumIntervalMs, backoffCoefficient)',
    ]);
  });

  it('explains an auth object that does not fit its type', () => {
    expect(problems({ providers: { crm: { ...crm, auth: { type: 'bearer', env: 'CRM_TOKEN' } } } })).toEqual([
      'providers.crm.auth: "tokenEnv" is required for type "bearer"; unknown key "env" (did you mean "tokenEnv"?)',
    ]);
    expect(problems({ providers: { crm: { ...crm, auth: { type: 'basic' } } } })).toEqual([
      'providers.crm.auth: "type" must be one of "bearer", "header", "query"; got "basic"',
    ]);
  });

  it('explains a provider by the kind its keys point to', () => {
    expect(problems({ providers: { crm: { openapi: 'crm.json' } } })).toEqual(['providers.crm: "baseUrl" is required']);
    expect(problems({ providers: { docs: { mcp: { command: 'node server.js' } } } })).toEqual([
      'providers.docs.mcp.command: Invalid input: expected array, received string',
    ]);
    expect(problems({ providers: { docs: {} } })).toEqual([
      'providers.docs: fits none of its forms: (1) "openapi" is required, "baseUrl" is required; or (2) "mcp" is required',
    ]);
  });

  it('still names a bad provider name and a bad URL', () => {
    expect(problems({ providers: { 'bad-name': crm, other: { ...crm, baseUrl: 'ftp://x' } } })).toEqual([
      'providers.bad-name: a provider name must be a JavaScript identifier (it becomes a global in the sandbox)',
      'providers.other.baseUrl: Invalid URL',
    ]);
  });

  it('checks the privacy section: its keys, and the providers it names', () => {
    expect(problems({ privacy: { enable: true, providers: { exclude: ['crm'] } } })).toEqual([
      'privacy.providers: unknown key "exclude" (valid keys: only, except, public)',
      'privacy: unknown key "enable" (did you mean "enabled"?)',
    ]);
    expect(problems({ providers: { crm }, privacy: { providers: { except: ['crn'] } } })).toEqual([
      'privacy.providers: crn is not among the providers (crm)',
    ]);
    expect(problems({ providers: { crm }, privacy: { providers: { public: ['catalog'] } } })).toEqual([
      'privacy.providers: catalog is not among the providers (crm)',
    ]);
  });

  it('finds the closest key only when it is close', () => {
    expect(closest('provider', ['providers', 'temporal'])).toBe('providers');
    expect(closest('MEMORYMB', ['memoryMb'])).toBe('memoryMb');
    expect(closest('xyz', ['providers', 'temporal'])).toBeUndefined();
  });
});

describe('credentials checked at start-up', () => {
  it('names each provider and the variable it lacks', () => {
    const { providers } = parseConfig(
      {
        providers: {
          crm: { ...crm, auth: { type: 'bearer', tokenEnv: 'CRM_TOKEN' } },
          sheets: { ...crm, auth: { type: 'query', param: 'key', valueEnv: 'SHEETS_KEY' } },
          docs: { mcp: { url: 'http://127.0.0.1:1/mcp', auth: { type: 'bearer', tokenEnv: 'DOCS_TOKEN' } } },
          weather: { mcp: { command: ['node', 'w.js'], env: ['WEATHER_KEY', 'PRESENT'] } },
        },
      },
      undefined,
      {},
    );
    expect(missingVariables(providers, { SHEETS_KEY: 'x', PRESENT: '' })).toEqual([
      { provider: 'crm', setting: 'auth.tokenEnv', variable: 'CRM_TOKEN', kind: 'credential' },
      { provider: 'docs', setting: 'mcp.auth.tokenEnv', variable: 'DOCS_TOKEN', kind: 'credential' },
      { provider: 'weather', setting: 'mcp.env', variable: 'WEATHER_KEY', kind: 'passed-through' },
    ]);
  });
});
