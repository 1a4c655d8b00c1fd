/** The MCP front end's settings: the HTTP listener and its callers (`http`), answer sizes (`results`). */
import { z } from 'zod';
import { configObject } from '../core/config-object.ts';
import { PRINCIPAL_NAME } from '../core/principal.ts';
import { EnvVarName } from '../providers/config.ts';

export const HttpConfig = configObject({
  host: z.string().default('127.0.0.1'),
  port: z.number().int().min(0).max(65535).default(3000),
  /** Bearer tokens by principal, each read from the named environment variable (see server/auth.ts). */
  tokens: z
    .record(
      z.string().regex(PRINCIPAL_NAME, 'a principal is 1-64 letters, digits, _ . @ -'),
      configObject({ tokenEnv: EnvVarName }),
    )
    .default({}),
  /** Browser origins allowed to call the server (any request with another Origin header is refused). */
  allowedOrigins: z.array(z.url()).default([]),
}).prefault({});

/** Tool answers stay within this many tokens (o200k_base); larger results are cut, or stored and paged (the job tool). */
export const ResultsConfig = configObject({ maxTokens: z.number().int().min(500).max(200_000).default(4000) }).prefault(
  {},
);

export type HttpConfig = z.infer<typeof HttpConfig>;
export type ResultsConfig = z.infer<typeof ResultsConfig>;
