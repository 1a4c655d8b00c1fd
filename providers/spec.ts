/**
 * Loads each provider's OpenAPI document into the flat, dereferenced shape the `search` sandbox
 * exposes: one entry per operation, carrying only what helps an agent find and call it.
 */
import { dereference, parse } from '@apidevtools/json-schema-ref-parser';

export interface Operation {
  provider: string;
  /** Upper-case HTTP method. */
  method: string;
  /** Relative to the provider's base URL (the OpenAPI server URL, or Swagger 2 basePath). */
  path: string;
  operationId?: string;
  summary?: string;
  description?: string;
  tags?: string[];
  deprecated?: boolean;
  /** Dereferenced; path-level parameters merged in: { name, in, required, description, schema }. */
  parameters?: unknown[];
  /** { required, description, contentType, schema }: the JSON body if there is one, else the first content type. */
  requestBody?: unknown;
  /** Status → { description, schema }. */
  responses?: Record<string, unknown>;
}

export interface ProviderSpec {
  provider: string;
  title?: string;
  description?: string;
  version?: string;
  operations: Operation[];
  /** An upstream MCP server's tools (it has no operations). */
  tools?: Array<{ name: string; description?: string; inputSchema?: unknown }>;
}

type Obj = Record<string, unknown>;

const HTTP_METHODS = ['get', 'put', 'post', 'delete', 'options', 'head', 'patch', 'trace'];

/** Schema keywords kept for search; examples, vendor extensions, xml and the like are noise there. */
const SCHEMA_KEYWORDS = new Set([
  '$ref',
  'title',
  'description',
  'type',
  'format',
  'enum',
  'const',
  'default',
  'nullable',
  'deprecated',
  'readOnly',
  'writeOnly',
  'required',
  'properties',
  'additionalProperties',
  'items',
  'allOf',
  'oneOf',
  'anyOf',
  'not',
  'minimum',
  'maximum',
  'exclusiveMinimum',
  'exclusiveMaximum',
  'minLength',
  'maxLength',
  'pattern',
  'minItems',
  'maxItems',
  'uniqueItems',
]);
const SUBSCHEMA_LISTS = new Set(['allOf', 'oneOf', 'anyOf']);
const SUBSCHEMAS = new Set(['items', 'not', 'additionalProperties']);

export async function loadProviderSpecs(providers: Record<string, { openapi: string }>): Promise<ProviderSpec[]> {
  return Promise.all(Object.entries(providers).map(([name, p]) => loadProviderSpec(name, p.openapi)));
}

export async function loadProviderSpec(provider: string, openapi: string): Promise<ProviderSpec> {
  try {
    return await load(provider, openapi);
  } catch (e) {
    throw new Error(
      `Cannot load the OpenAPI spec of provider "${provider}" from ${openapi}: ${e instanceof Error ? e.message : String(e)}`,
      { cause: e },
    );
  }
}

async function load(provider: string, openapi: string): Promise<ProviderSpec> {
  // The root document is the operator's own choice, so it may live on localhost (the demo APIs
  // serve theirs); $refs to other URLs keep the library's default guard against internal addresses.
  const root = await parse(openapi, { resolve: { http: { safeUrlResolver: false } } });
  if (!isObj(root)) throw new Error('the document is not a JSON/YAML object');
  const swagger2 = root.swagger === '2.0';
  if (!swagger2 && !(typeof root.openapi === 'string' && root.openapi.startsWith('3.'))) {
    throw new Error(
      `not an OpenAPI 3.x or Swagger 2.0 document (found ${JSON.stringify(root.openapi ?? root.swagger ?? null)} where "openapi": "3.x" was expected)`,
    );
  }
  // Circular schemas are dereferenced into real cycles (with `circular: 'ignore'` every $ref to
  // them would stay a bare $ref, hiding the schema from search: components are not exposed). The
  // reducer cuts each cycle where it closes, naming the $ref it came from.
  const refOf = new WeakMap<object, string>();
  const doc = await dereference<Obj>(openapi, root, {
    dereference: {
      circular: true,
      onDereference: (ref, value) => {
        if (!refOf.has(value)) refOf.set(value, ref);
      },
    },
  });
  const reduce = schemaReducer(refOf);
  const info = isObj(doc.info) ? doc.info : {};
  const operations: Operation[] = [];
  for (const [path, item] of Object.entries(isObj(doc.paths) ? doc.paths : {})) {
    if (!isObj(item)) continue;
    for (const method of HTTP_METHODS) {
      const op = item[method];
      if (!isObj(op)) continue;
      const params = mergeParameters(item.parameters, op.parameters);
      if (!swagger2) {
        operations.push(openapi3Operation(provider, method, path, op, params, reduce));
        continue;
      }
      try {
        operations.push(swagger2Operation(provider, method, path, op, params, doc, reduce));
      } catch (e) {
        throw new Error(
          `Swagger 2.0 spec at paths["${path}"].${method}: ${e instanceof Error ? e.message : String(e)}`,
          { cause: e },
        );
      }
    }
  }
  return compact({
    provider,
    title: str(info.title),
    description: str(info.description),
    version: str(info.version),
    operations,
  });
}

function openapi3Operation(
  provider: string,
  method: string,
  path: string,
  op: Obj,
  params: Obj[],
  reduce: Reducer,
): Operation {
  const operation = baseOperation(provider, method, path, op);
  if (params.length) {
    operation.parameters = params.map((p) =>
      compact({ ...parameterBasics(p), schema: reduce(p.schema ?? pickContent(p.content)?.value.schema) }),
    );
  }
  if (isObj(op.requestBody)) {
    const body = op.requestBody;
    const media = pickContent(body.content);
    operation.requestBody = compact({
      required: body.required === true,
      description: str(body.description),
      contentType: media?.type,
      schema: reduce(media?.value.schema),
    });
  }
  if (isObj(op.responses)) {
    operation.responses = mapResponses(op.responses, (r) => reduce(pickContent(r.content)?.value.schema));
  }
  return operation;
}

/**
 * Swagger 2.0 in the same shape as OpenAPI 3: non-body parameters carry their type inline, a
 * `body` parameter (or `formData` ones) becomes the request body. Paths stay relative to basePath,
 * as OpenAPI 3 paths are to the server URL: requests go to the provider's configured base URL.
 */
function swagger2Operation(
  provider: string,
  method: string,
  path: string,
  op: Obj,
  params: Obj[],
  doc: Obj,
  reduce: Reducer,
): Operation {
  const operation = baseOperation(provider, method, path, op);
  const consumes = stringList(op.consumes) ?? stringList(doc.consumes) ?? ['application/json'];
  const inline = params.filter((p) => p.in !== 'body' && p.in !== 'formData');
  if (inline.length)
    operation.parameters = inline.map((p) => ({ ...parameterBasics(p), schema: reduce(schemaPart(p)) }));
  const bodies = params.filter((p) => p.in === 'body');
  const form = params.filter((p) => p.in === 'formData');
  if (bodies.length > 1) throw new Error('more than one "in: body" parameter; Swagger 2.0 allows one');
  if (bodies.length && form.length)
    throw new Error('both "in: body" and "in: formData" parameters; Swagger 2.0 allows only one kind');
  if (bodies[0]) {
    const body = bodies[0];
    operation.requestBody = compact({
      required: body.required === true,
      description: str(body.description),
      contentType: consumes.find(isJson) ?? consumes[0],
      schema: reduce(body.schema),
    });
  } else if (form.length) {
    const properties = Object.fromEntries(
      form.map((p) => [String(p.name), reduce({ ...schemaPart(p), ...compact({ description: str(p.description) }) })]),
    );
    const required = form.filter((p) => p.required === true).map((p) => String(p.name));
    operation.requestBody = {
      required: required.length > 0,
      contentType:
        consumes.find((c) => c.startsWith('multipart/') || c === 'application/x-www-form-urlencoded') ??
        'application/x-www-form-urlencoded',
      schema: { type: 'object', properties, ...(required.length ? { required } : {}) },
    };
  }
  if (isObj(op.responses)) operation.responses = mapResponses(op.responses, (r) => reduce(r.schema));
  return operation;
}

function baseOperation(provider: string, method: string, path: string, op: Obj): Operation {
  const tags = stringList(op.tags);
  return compact({
    provider,
    method: method.toUpperCase(),
    path,
    operationId: str(op.operationId),
    summary: str(op.summary),
    description: str(op.description),
    tags: tags?.length ? tags : undefined,
    deprecated: op.deprecated === true ? true : undefined,
  });
}

/** Operation-level parameters override path-level ones with the same name and location. */
function mergeParameters(pathLevel: unknown, opLevel: unknown): Obj[] {
  const merged = new Map<string, Obj>();
  for (const list of [pathLevel, opLevel]) {
    if (!Array.isArray(list)) continue;
    for (const p of list) if (isObj(p)) merged.set(`${String(p.in)}:${String(p.name)}`, p);
  }
  return [...merged.values()];
}

function parameterBasics(p: Obj): Obj {
  return compact({
    name: p.name,
    in: p.in,
    required: p.required === true,
    description: str(p.description),
    deprecated: p.deprecated === true ? true : undefined,
  });
}

function mapResponses(responses: Obj, schemaOf: (r: Obj) => unknown): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const [status, r] of Object.entries(responses)) {
    if (!isObj(r) || status.startsWith('x-')) continue;
    out[status] = compact({ description: str(r.description), schema: schemaOf(r) });
  }
  return out;
}

/** The JSON media type if there is one (what an agent's requests and responses use), else the first. */
function pickContent(content: unknown): { type: string; value: Obj } | undefined {
  if (!isObj(content)) return undefined;
  const entries = Object.entries(content).filter((e): e is [string, Obj] => isObj(e[1]));
  const [type, value] = entries.find(([t]) => isJson(t)) ?? entries[0] ?? [];
  return type && value ? { type, value } : undefined;
}

type Reducer = (schema: unknown) => unknown;

/**
 * Copies a dereferenced schema down to SCHEMA_KEYWORDS. Shared subschemas are reduced once and
 * shared again (the document is a DAG after dereferencing); a value met again among its own
 * ancestors becomes its `$ref`, so the result is always JSON-serializable.
 */
function schemaReducer(refOf: WeakMap<object, string>): Reducer {
  const done = new WeakMap<object, unknown>();
  const inProgress = new Set<object>();
  const reduce = (schema: unknown): unknown => {
    if (!isObj(schema)) return typeof schema === 'boolean' ? schema : undefined;
    const cached = done.get(schema);
    if (cached !== undefined) return cached;
    if (inProgress.has(schema)) return { $ref: refOf.get(schema) ?? '#circular' };
    inProgress.add(schema);
    const out: Obj = {};
    for (const [key, value] of Object.entries(schema)) {
      if (!SCHEMA_KEYWORDS.has(key) || value === undefined) continue;
      if (key === 'properties' && isObj(value)) {
        out.properties = Object.fromEntries(Object.entries(value).map(([name, s]) => [name, reduce(s) ?? {}]));
      } else if (SUBSCHEMA_LISTS.has(key) && Array.isArray(value)) {
        out[key] = value.map((s) => reduce(s) ?? {});
      } else if (SUBSCHEMAS.has(key)) {
        // OpenAPI 3.1 / JSON Schema 2020 allows tuple `items` arrays; keep each member reduced.
        out[key] = Array.isArray(value) ? value.map((s) => reduce(s) ?? {}) : reduce(value);
      } else {
        out[key] = value;
      }
    }
    inProgress.delete(schema);
    done.set(schema, out);
    return out;
  };
  return reduce;
}

/** A Swagger 2.0 non-body parameter carries its schema inline; `required` there means the parameter, not properties. */
function schemaPart(p: Obj): Obj {
  return Object.fromEntries(
    Object.entries(p).filter(([k]) => SCHEMA_KEYWORDS.has(k) && k !== 'required' && k !== 'description'),
  );
}

/** Drops undefined fields, so absent ones do not show up as keys. */
function compact<T extends object>(fields: T): T {
  return Object.fromEntries(Object.entries(fields).filter(([, v]) => v !== undefined)) as T;
}

function str(value: unknown): string | undefined {
  return typeof value === 'string' ? value : undefined;
}

function stringList(value: unknown): string[] | undefined {
  return Array.isArray(value) ? value.filter((v): v is string => typeof v === 'string') : undefined;
}

function isJson(mediaType: string): boolean {
  return /^application\/(.+\+)?json\b/i.test(mediaType);
}

function isObj(value: unknown): value is Obj {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}
