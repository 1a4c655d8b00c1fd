/**
 * Temporal's remote codec protocol (`POST /codec/decode`, `/codec/encode`), for the Temporal UI: a
 * page on another origin, hence CORS. It decrypts every job's payloads, so only the operator may
 * use it: a server with tokens refuses.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { AesGcmCodec } from '../temporal/codec.ts';
import { checkAuthorization, checkSource, type ServerIdentity } from './request-checks.ts';

export type CodecAction = 'encode' | 'decode';

/** The codec action a path asks for, if it is one of the codec endpoint's. */
export function codecActionOf(path: string): CodecAction | undefined {
  return /^\/codec\/(encode|decode)$/.exec(path)?.[1] as CodecAction | undefined;
}

export async function serveCodec(
  codec: AesGcmCodec,
  action: CodecAction,
  server: ServerIdentity,
  maxBodyBytes: number,
  req: IncomingMessage,
  res: ServerResponse,
): Promise<void> {
  const cors: Record<string, string> = req.headers.origin
    ? {
        'access-control-allow-origin': req.headers.origin,
        'access-control-allow-credentials': 'true',
        'access-control-allow-methods': 'POST, OPTIONS',
        'access-control-allow-headers': 'content-type, x-namespace, authorization',
        vary: 'origin',
      }
    : {};
  const answer = (status: number, body?: unknown, headers: Record<string, string> = {}) =>
    void res
      .writeHead(status, { ...cors, ...headers, ...(body === undefined ? {} : { 'content-type': 'application/json' }) })
      .end(body === undefined ? undefined : JSON.stringify(body));

  const source = checkSource(req.headers, server);
  if (!source.ok) return answer(source.status, { message: source.message });
  if (req.method === 'OPTIONS') return answer(204);
  const principal = checkAuthorization(req.headers, server);
  if (!principal.ok) return answer(principal.status, { message: principal.message }, principal.headers);
  if (!principal.value.seesAll) {
    return answer(403, {
      message:
        'The codec endpoint decrypts every job, so it is for the operator only: serve it from a loopback server without tokens.',
    });
  }
  if (req.method !== 'POST') return answer(405, { message: 'Use POST with {"payloads": [...]}.' });
  let body = '';
  for await (const chunk of req) {
    body += chunk;
    if (body.length > maxBodyBytes) return answer(413, { message: `The body is larger than ${maxBodyBytes} bytes.` });
  }
  try {
    answer(200, await codec.handle(action, body));
  } catch (e) {
    answer(400, { message: `Cannot ${action}: ${(e as Error).message}` });
  }
}
