// Shared HTTP plumbing for the demo APIs: routing, JSON bodies, errors, auth,
// latency/failure injection and the request statistics tests assert on.
import { readFileSync } from 'node:fs';
import { createServer } from 'node:http';
import type { IncomingHttpHeaders, IncomingMessage, ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { setTimeout as delay } from 'node:timers/promises';

export const MAX_BODY_BYTES = 5 * 1024 * 1024;

export class HttpError extends Error {
  readonly status: number;
  readonly code: string;
  readonly headers: Record<string, string>;

  constructor(status: number, code: string, message: string, headers: Record<string, string> = {}) {
    super(message);
    this.status = status;
    this.code = code;
    this.headers = headers;
  }
}

/** A response is either JSON (`json`), raw text (`text` + `contentType`) or empty. */
export interface ApiResponse {
  status: number;
  json?: unknown;
  text?: string;
  contentType?: string;
  headers?: Record<string, string>;
}

export interface RouteRequest {
  params: Record<string, string>;
  query: URLSearchParams;
  headers: IncomingHttpHeaders;
  body: unknown;
}

export interface Route {
  method: 'GET' | 'POST' | 'PATCH' | 'DELETE';
  /** OpenAPI-style path such as `/leads/{id}`; `${method} ${path}` is the stats key. */
  path: string;
  handle: (request: RouteRequest) => ApiResponse | Promise<ApiResponse>;
}

export interface HttpApiOptions {
  /** Used in error messages, e.g. "CRM demo API". */
  name: string;
  spec: URL;
  routes: Route[];
  port?: number;
  host?: string;
  /** Waited before a request is handled: a client that hangs up meanwhile is never served (nothing applied). */
  latencyMs?: number;
  /** Waited after a request is handled, before its answer: a client that hangs up meanwhile had its write applied unseen. */
  answerDelayMs?: number;
  failureRate?: number;
  seed?: number;
  requiredBearerToken?: string;
}

export interface HttpStats {
  requests: number;
  byRoute: Record<string, number>;
  maxInFlight: number;
  rejectedByFailureInjection: number;
}

export interface HttpApi {
  url: string;
  specUrl: string;
  stats(): HttpStats;
  reset(): void;
  setFailureRate(rate: number): void;
  setLatency(ms: number): void;
  close(): Promise<void>;
}

export function json(status: number, body: unknown): ApiResponse {
  return { status, json: body };
}

export function intParam(
  query: URLSearchParams,
  name: string,
  { fallback, min = 0, max }: { fallback: number; min?: number; max?: number },
): number {
  const raw = query.get(name);
  if (raw === null || raw === '') return fallback;
  const value = Number(raw);
  if (!Number.isInteger(value) || value < min || (max !== undefined && value > max)) {
    const range = max === undefined ? `>= ${min}` : `between ${min} and ${max}`;
    throw new HttpError(400, 'invalid_parameter', `${name} must be an integer ${range}`);
  }
  return value;
}

export async function startHttpApi(options: HttpApiOptions): Promise<HttpApi> {
  const host = options.host ?? '127.0.0.1';
  const seed = options.seed ?? 1;
  const spec = readFileSync(options.spec, 'utf8');
  const routes = options.routes.map((route) => ({
    route,
    key: `${route.method} ${route.path}`,
    segments: splitPath(route.path),
  }));

  let latencyMs = checkLatency(options.latencyMs ?? 0);
  const answerDelayMs = checkLatency(options.answerDelayMs ?? 0, 'answerDelayMs');
  let failureRate = checkRate(options.failureRate ?? 0);
  let random = mulberry32(seed);
  let inFlight = 0;
  let stats = emptyStats();

  function findRoute(method: string, pathname: string) {
    const parts = splitPath(pathname);
    const allowed: string[] = [];
    for (const candidate of routes) {
      const params = matchPath(candidate.segments, parts);
      if (!params) continue;
      if (candidate.route.method === method) return { ...candidate, params };
      allowed.push(candidate.route.method);
    }
    if (allowed.length === 0) throw new HttpError(404, 'not_found', `no route for ${method} ${pathname}`);
    throw new HttpError(405, 'method_not_allowed', `${method} is not allowed on ${pathname}`, {
      allow: allowed.join(', '),
    });
  }

  async function respond(req: IncomingMessage, url: URL): Promise<ApiResponse> {
    // Drawn for every request, so the failure pattern depends only on the seed and arrival order.
    const injectFailure = random() < failureRate;
    let found: ReturnType<typeof findRoute> | undefined;
    let routeError: unknown;
    try {
      found = findRoute(req.method ?? 'GET', url.pathname);
      stats.byRoute[found.key] = (stats.byRoute[found.key] ?? 0) + 1;
    } catch (error) {
      routeError = error;
    }
    if (latencyMs > 0) await delay(latencyMs);
    if (injectFailure) {
      stats.rejectedByFailureInjection++;
      throw new HttpError(503, 'unavailable', 'injected failure, retry later', { 'retry-after': '0' });
    }
    if (!found) throw routeError;
    if (
      options.requiredBearerToken !== undefined &&
      req.headers.authorization !== `Bearer ${options.requiredBearerToken}`
    ) {
      throw new HttpError(401, 'unauthorized', 'missing or invalid bearer token', {
        'www-authenticate': 'Bearer',
      });
    }
    const body = await readJsonBody(req);
    const response = await found.route.handle({
      params: found.params,
      query: url.searchParams,
      headers: req.headers,
      body,
    });
    if (answerDelayMs > 0) await delay(answerDelayMs);
    return response;
  }

  async function handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const url = new URL(req.url ?? '/', 'http://localhost');
    if (req.method === 'GET' && url.pathname === '/openapi.json') {
      send(res, { status: 200, text: spec, contentType: 'application/json; charset=utf-8' });
      return;
    }
    stats.requests++;
    inFlight++;
    stats.maxInFlight = Math.max(stats.maxInFlight, inFlight);
    res.once('close', () => inFlight--);
    let response: ApiResponse;
    try {
      response = await respond(req, url);
    } catch (error) {
      // The client went away mid-request (a worker killed while sending): nobody to answer, nothing wrong here.
      if (res.destroyed && (error as NodeJS.ErrnoException).code === 'ECONNRESET') return;
      response = errorResponse(error);
    }
    send(res, response);
  }

  const server = createServer((req, res) => void handle(req, res));
  const requestedPort = options.port ?? 0;
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(requestedPort, host, () => {
      server.off('error', reject);
      resolve();
    });
  }).catch((error: NodeJS.ErrnoException) => {
    const reason =
      error.code === 'EADDRINUSE' ? 'port in use. Stop the other process or pass another port.' : error.message;
    throw new Error(`${options.name} could not listen on ${host}:${requestedPort}: ${reason}`, { cause: error });
  });

  const { port } = server.address() as AddressInfo;
  const url = `http://${host.includes(':') ? `[${host}]` : host}:${port}`;
  return {
    url,
    specUrl: `${url}/openapi.json`,
    stats: () => ({ ...stats, byRoute: { ...stats.byRoute } }),
    reset() {
      stats = emptyStats();
      random = mulberry32(seed);
    },
    setFailureRate(rate) {
      failureRate = checkRate(rate);
    },
    setLatency(ms) {
      latencyMs = checkLatency(ms);
    },
    close: () =>
      new Promise<void>((resolve, reject) => {
        server.close((error) => (error ? reject(error) : resolve()));
        // Keep-alive sockets would otherwise hold close() open until they time out.
        server.closeAllConnections();
      }),
  };
}

function emptyStats(): HttpStats {
  return { requests: 0, byRoute: {}, maxInFlight: 0, rejectedByFailureInjection: 0 };
}

function splitPath(path: string): string[] {
  return path.split('/').filter((part) => part !== '');
}

function matchPath(pattern: string[], parts: string[]): Record<string, string> | undefined {
  if (pattern.length !== parts.length) return undefined;
  const params: Record<string, string> = {};
  for (const [i, segment] of pattern.entries()) {
    if (segment.startsWith('{') && segment.endsWith('}')) params[segment.slice(1, -1)] = decodeSegment(parts[i]);
    else if (segment !== parts[i]) return undefined;
  }
  return params;
}

function decodeSegment(part: string): string {
  try {
    return decodeURIComponent(part);
  } catch {
    throw new HttpError(400, 'invalid_path', `malformed path segment: ${part}`);
  }
}

async function readJsonBody(req: IncomingMessage): Promise<unknown> {
  const chunks: Buffer[] = [];
  let size = 0;
  // Oversized bodies are drained rather than cut off, so the client reliably receives the 413.
  for await (const chunk of req as AsyncIterable<Buffer>) {
    size += chunk.length;
    if (size <= MAX_BODY_BYTES) chunks.push(chunk);
  }
  if (size > MAX_BODY_BYTES) {
    throw new HttpError(413, 'payload_too_large', `request body exceeds ${MAX_BODY_BYTES} bytes`);
  }
  if (size === 0) return undefined;
  try {
    return JSON.parse(Buffer.concat(chunks).toString('utf8'));
  } catch {
    throw new HttpError(400, 'invalid_json', 'request body is not valid JSON');
  }
}

function errorResponse(error: unknown): ApiResponse {
  if (error instanceof HttpError) {
    return {
      status: error.status,
      json: { error: { code: error.code, message: error.message } },
      headers: error.headers,
    };
  }
  console.error(error);
  return json(500, { error: { code: 'internal', message: 'internal server error' } });
}

function send(res: ServerResponse, response: ApiResponse): void {
  const headers = { ...response.headers };
  let payload: string | undefined;
  if (response.text !== undefined) {
    payload = response.text;
    headers['content-type'] = response.contentType ?? 'text/plain; charset=utf-8';
  } else if (response.json !== undefined) {
    payload = JSON.stringify(response.json);
    headers['content-type'] = 'application/json; charset=utf-8';
  }
  res.writeHead(response.status, headers);
  res.end(payload);
}

function checkRate(rate: number): number {
  if (!(rate >= 0 && rate <= 1)) throw new RangeError(`failureRate must be between 0 and 1, got ${rate}`);
  return rate;
}

function checkLatency(ms: number, name = 'latencyMs'): number {
  if (!(ms >= 0)) throw new RangeError(`${name} must be >= 0, got ${ms}`);
  return ms;
}

/** Small seeded PRNG so injected failures are reproducible across runs. */
function mulberry32(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}
