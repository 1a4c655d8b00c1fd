/**
 * How a provider is configured: an HTTP API with an OpenAPI document, or an upstream MCP server.
 * Credentials always come from the environment, so config files can be committed.
 */
import { z } from 'zod';
import { patternProblem } from '../core/approval-policy.ts';
import { ApprovalRule } from '../core/approvals.ts';
import { configObject } from '../core/config-object.ts';
import { Durability, RetrySettings } from '../core/journal.ts';
import { isReservedGlobal } from '../core/globals.ts';

export const ProviderName = z
  .string()
  .regex(
    /^[A-Za-z_$][A-Za-z0-9_$]*$/,
    'a provider name must be a JavaScript identifier (it becomes a global in the sandbox)',
  )
  .refine((name) => !isReservedGlobal(name), { message: 'this name is reserved by the sandbox' });

export const EnvVarName = z.string().regex(/^[A-Za-z_][A-Za-z0-9_]*$/, 'must be the name of an environment variable');

export const ProviderAuth = z.discriminatedUnion('type', [
  configObject({ type: z.literal('bearer'), tokenEnv: EnvVarName }),
  configObject({ type: z.literal('header'), header: z.string(), valueEnv: EnvVarName }),
  configObject({ type: z.literal('query'), param: z.string(), valueEnv: EnvVarName }),
]);

/** Calls that wait for a human's approval before they are made (core/approvals.ts), checked for the provider's kind. */
function approvalPolicy(kind: 'http' | 'tool') {
  return z
    .array(ApprovalRule)
    .superRefine((rules, ctx) => {
      rules.forEach((rule, i) =>
        rule.match.forEach((pattern, j) => {
          const problem = patternProblem(pattern, kind);
          if (problem) ctx.addIssue({ code: 'custom', message: problem, path: [i, 'match', j] });
        }),
      );
    })
    .optional();
}

/** An HTTP API described by an OpenAPI document: `name.request({ method, path, query, body })` in the sandbox. */
export const HttpProviderConfig = configObject({
  /** OpenAPI document: a file path (relative to the config file) or an http(s) URL. */
  openapi: z.string().min(1),
  /** How long fetching an `openapi` URL may take at start-up before the provider is marked failed. */
  openapiTimeoutMs: z.number().int().positive().default(30_000),
  baseUrl: z.url({ protocol: /^https?$/ }),
  auth: ProviderAuth.optional(),
  /** Header carrying the per-effect idempotency key on writes. */
  idempotencyHeader: z.string().default('Idempotency-Key'),
  timeoutMs: z.number().int().positive().default(30_000),
  /** Retries of transient failures (connection errors, 408, 429, 5xx); Retry-After is honoured. */
  retry: RetrySettings.prefault({}),
  /**
   * "batched": consecutive call-only rounds to this provider run in one activity and reach the
   * journal every `batchFlush` calls or ms (opt-in, for bulk work against idempotent APIs).
   */
  durability: Durability.default('round'),
  /** Refuse requests that match no operation of the spec, naming the closest ones; turn off for an API whose spec lags behind it. */
  validateRequests: z.boolean().default(true),
  /** Operations (`METHOD /path` patterns) that need a human's approval before each call, or after the first N. */
  approval: approvalPolicy('http'),
});

/** An upstream MCP server: its tools become `name.tool_name(args)` in the sandbox. */
export const McpProviderConfig = configObject({
  mcp: z.union([
    configObject({
      /** Command line of a stdio server, e.g. ["node", "server.js"]; each worker process starts its own. */
      command: z.array(z.string()).min(1),
      /** Environment for the server, as names of the worker's variables to pass through (secrets stay out of the file). */
      env: z.array(EnvVarName).default([]),
    }),
    configObject({ url: z.url({ protocol: /^https?$/ }), auth: ProviderAuth.optional() }),
  ]),
  timeoutMs: z.number().int().positive().default(60_000),
  retry: RetrySettings.prefault({}),
  durability: Durability.default('round'),
  /** Tools (names, `*` as a wildcard) that need a human's approval before each call, or after the first N. */
  approval: approvalPolicy('tool'),
});

export const ProviderConfig = z.union([HttpProviderConfig, McpProviderConfig]);

/** The `providers` section: name → provider. */
export const ProvidersConfig = z.record(ProviderName, ProviderConfig);

export type ProviderAuth = z.infer<typeof ProviderAuth>;
export type ProviderConfig = z.infer<typeof ProviderConfig>;
export type HttpProviderConfig = z.infer<typeof HttpProviderConfig>;
export type McpProviderConfig = z.infer<typeof McpProviderConfig>;
export type ProvidersConfig = z.infer<typeof ProvidersConfig>;

export function isMcpProvider(provider: ProviderConfig): provider is McpProviderConfig {
  return 'mcp' in provider;
}
