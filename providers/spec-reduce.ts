/**
 * Reduces a parsed OpenAPI 3.x / Swagger 2.0 document to what search shows and validation needs:
 * one entry per operation, and every schema reached through a `$ref` reduced once into a table
 * keyed by its JSON pointer, referred to as `{ $ref: pointer }`. The result is a graph written
 * out once, never a tree: shared and cyclic schemas cost their size once, so the record is no
 * larger than the document (expanding Stripe's shared schemas per path writes 4.7 GB).
 *
 * Only what operations reach is read: `$ref`s in examples or vendor extensions are never followed.
 * A `$ref` that points nowhere, or at something that is not an object, is kept as
 * `{ $ref, unresolved }` and reported in `warnings` with where it was met; the rest of the spec loads.
 */
import type { Operation, Parameter, RequestBody, Response, Schema, SpecRecord } from './spec.ts';
import { SPEC_FORMAT } from './spec.ts';

type Obj = Record<string, unknown>;

const HTTP_METHODS = ['get', 'put', 'post', 'delete', 'options', 'head', 'patch', 'trace'];

/** Schema keywords kept for search; examples, vendor extensions, xml and the like are noise there. */
const SCHEMA_KEYWORDS = new Set([
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
  'prefixItems',
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
const SUBSCHEMA_LISTS = new Set(['allOf', 'oneOf', 'anyOf', 'prefixItems']);
const SUBSCHEMAS = new Set(['items', 'not', 'additionalProperties']);
/** Keywords that make a schema worth a table entry of its own when it is shared; leaves are just copied. */
const COMPOSITE = ['properties', 'items', 'prefixItems', 'allOf', 'oneOf', 'anyOf', 'not', 'additionalProperties'];

/** Warnings listed one by one; beyond this they are counted. */
const MAX_WARNINGS = 20;

/** The document's operations and the schemas they reach. Throws only for a document that is not OpenAPI at all. */
export function reduceDocument(doc: unknown): SpecRecord {
  if (!isObj(doc)) throw new Error('the document is not a JSON/YAML object');
  const swagger2 = doc.swagger === '2.0';
  if (!swagger2 && !(typeof doc.openapi === 'string' && doc.openapi.startsWith('3.'))) {
    throw new Error(
      `not an OpenAPI 3.x or Swagger 2.0 document (found ${JSON.stringify(doc.openapi ?? doc.swagger ?? null)} where "openapi": "3.x" was expected)`,
    );
  }
  return new Reducer(doc, swagger2).run();
}

/** `{ value, at }`: a value and the JSON pointer it was found at, after following `$ref`s. */
interface Located {
  value: unknown;
  at: string;
  /** Reached through a $ref: other places may share it. */
  shared: boolean;
}

class Reducer {
  private readonly doc: Obj;
  private readonly swagger2: boolean;
  private readonly schemas: Record<string, Schema> = {};
  /** Table entries registered but not reduced yet (reduced after the operations, so no recursion follows $refs). */
  private readonly pending: Array<{ at: string; node: Obj }> = [];
  private readonly warnings: string[] = [];
  private readonly warned = new Set<string>();
  private readonly targets = new Map<string, { value: unknown; at: string } | undefined>();

  constructor(doc: Obj, swagger2: boolean) {
    this.doc = doc;
    this.swagger2 = swagger2;
  }

  run(): SpecRecord {
    const operations: Operation[] = [];
    const paths = isObj(this.doc.paths) ? this.doc.paths : {};
    for (const [path, raw] of Object.entries(paths)) {
      const item = this.follow(raw, `#/paths/${escape(path)}`);
      if (!item || !isObj(item.value)) continue;
      const pathItem = item.value;
      const pathParameters = this.parameterList(pathItem.parameters, `${item.at}/parameters`, true);
      for (const method of HTTP_METHODS) {
        const op = pathItem[method];
        if (!isObj(op)) continue;
        const at = `${item.at}/${method}`;
        const parameters = mergeParameters(
          pathParameters,
          this.parameterList(op.parameters, `${at}/parameters`, item.shared),
        );
        operations.push(this.operation(method, path, op, at, parameters, item.shared));
      }
    }
    for (let next = this.pending.pop(); next; next = this.pending.pop()) {
      this.schemas[next.at] = this.inlineSchema(next.node, next.at);
    }
    const info = isObj(this.doc.info) ? this.doc.info : {};
    const dropped = this.warned.size - this.warnings.length;
    return compact({
      format: SPEC_FORMAT,
      title: str(info.title),
      description: str(info.description),
      version: str(info.version),
      operations,
      schemas: this.schemas,
      warnings: dropped > 0 ? [...this.warnings, `…and ${dropped} more`] : this.warnings,
    });
  }

  private operation(
    method: string,
    path: string,
    op: Obj,
    at: string,
    parameters: Located[],
    shared: boolean,
  ): Operation {
    const tags = stringList(op.tags);
    const operation: Operation = compact({
      method: method.toUpperCase(),
      path,
      operationId: str(op.operationId),
      summary: str(op.summary),
      description: str(op.description),
      tags: tags?.length ? tags : undefined,
      deprecated: op.deprecated === true ? true : undefined,
    });
    if (this.swagger2) this.swagger2Parts(operation, op, at, parameters);
    else this.openapi3Parts(operation, op, at, parameters);
    const responses = this.follow(op.responses, `${at}/responses`);
    if (responses && isObj(responses.value)) {
      operation.responses = {};
      for (const [status, raw] of Object.entries(responses.value)) {
        if (status.startsWith('x-')) continue;
        const response = this.follow(raw, `${responses.at}/${escape(status)}`, shared || responses.shared);
        if (!response || !isObj(response.value)) continue;
        const r = response.value;
        const schema = this.swagger2
          ? this.schema(r.schema, `${response.at}/schema`, response.shared)
          : this.mediaSchema(r.content, `${response.at}/content`, response.shared)?.schema;
        operation.responses[status] = compact<Response>({ description: str(r.description), schema });
      }
    }
    return operation;
  }

  private openapi3Parts(operation: Operation, op: Obj, at: string, parameters: Located[]): void {
    if (parameters.length) {
      operation.parameters = parameters.map(({ value, at: pAt, shared }) => {
        const p = value as Obj;
        const schema =
          p.schema !== undefined
            ? this.schema(p.schema, `${pAt}/schema`, shared)
            : this.mediaSchema(p.content, `${pAt}/content`, shared)?.schema;
        return compact({ ...parameterBasics(p), schema });
      });
    }
    const body = this.follow(op.requestBody, `${at}/requestBody`);
    if (body && isObj(body.value)) {
      const media = this.mediaSchema(body.value.content, `${body.at}/content`, body.shared);
      operation.requestBody = compact<RequestBody>({
        required: body.value.required === true,
        description: str(body.value.description),
        contentType: media?.type,
        schema: media?.schema,
      });
    }
  }

  /**
   * Swagger 2.0 in the same shape as OpenAPI 3: non-body parameters carry their type inline, a
   * `body` parameter (or `formData` ones) becomes the request body. Paths stay relative to basePath,
   * as OpenAPI 3 paths are to the server URL: requests go to the provider's configured base URL.
   */
  private swagger2Parts(operation: Operation, op: Obj, at: string, parameters: Located[]): void {
    const consumes = stringList(op.consumes) ?? stringList(this.doc.consumes) ?? ['application/json'];
    const of = (kind: string) => parameters.filter((p) => (p.value as Obj).in === kind);
    const inline = parameters.filter((p) => !['body', 'formData'].includes(String((p.value as Obj).in)));
    if (inline.length) {
      operation.parameters = inline.map(({ value, at: pAt }) => {
        const p = value as Obj;
        return { ...parameterBasics(p), schema: this.inlineSchema(schemaPart(p), pAt) };
      });
    }
    const [body, ...moreBodies] = of('body');
    const form = of('formData');
    if (moreBodies.length)
      this.warn(at, 'has more than one "in: body" parameter (Swagger 2.0 allows one); the first is used');
    if (body && form.length)
      this.warn(at, 'has both "in: body" and "in: formData" parameters; the formData ones are ignored');
    if (body) {
      const p = body.value as Obj;
      operation.requestBody = compact<RequestBody>({
        required: p.required === true,
        description: str(p.description),
        contentType: consumes.find(isJson) ?? consumes[0],
        schema: this.schema(p.schema, `${body.at}/schema`, body.shared),
      });
    } else if (form.length) {
      const properties = Object.fromEntries(
        form.map(({ value, at: pAt }) => {
          const p = value as Obj;
          const schema = this.inlineSchema({ ...schemaPart(p), ...compact({ description: str(p.description) }) }, pAt);
          return [String(p.name), schema];
        }),
      );
      const required = form.filter((p) => (p.value as Obj).required === true).map((p) => String((p.value as Obj).name));
      operation.requestBody = {
        required: required.length > 0,
        contentType:
          consumes.find((c) => c.startsWith('multipart/') || c === 'application/x-www-form-urlencoded') ??
          'application/x-www-form-urlencoded',
        schema: { type: 'object', properties, ...(required.length ? { required } : {}) },
      };
    }
  }

  /** Each parameter, `$ref`s followed; entries that are not parameter objects are skipped. */
  private parameterList(list: unknown, at: string, shared: boolean): Located[] {
    const resolved = this.follow(list, at, shared);
    if (!resolved || !Array.isArray(resolved.value)) return [];
    return resolved.value
      .map((p, i) => this.follow(p, `${resolved.at}/${i}`, resolved.shared))
      .filter((p): p is Located => p !== undefined && isObj(p.value));
  }

  /** The JSON media type's schema if there is one (what an agent's requests and responses use), else the first. */
  private mediaSchema(content: unknown, at: string, shared: boolean): { type: string; schema?: Schema } | undefined {
    const located = this.follow(content, at, shared);
    if (!located || !isObj(located.value)) return undefined;
    const entries = Object.entries(located.value);
    const [type] = entries.find(([t, v]) => isJson(t) && isObj(v)) ?? entries.find(([, v]) => isObj(v)) ?? [];
    if (type === undefined) return undefined;
    const media = this.follow(located.value[type], `${located.at}/${escape(type)}`, located.shared);
    if (!media || !isObj(media.value)) return { type };
    return compact({ type, schema: this.schema(media.value.schema, `${media.at}/schema`, media.shared) });
  }

  /**
   * A schema as the record holds it: a `$ref` to its table entry if it is one (or if it is a
   * composite schema others may reach too: `shared`), else reduced in place.
   */
  private schema(node: unknown, at: string, shared = false): Schema | undefined {
    if (typeof node === 'boolean') return node;
    if (!isObj(node)) return undefined;
    if (typeof node.$ref === 'string') {
      const { $ref, ...siblings } = node;
      const target = this.resolve(node, at, false);
      const ref =
        'problem' in target
          ? { $ref, unresolved: this.warn(target.at, target.problem) }
          : isObj(target.value)
            ? this.tableRef(target.at, target.value)
            : { $ref, unresolved: this.warn(at, `$ref ${$ref} points at ${describe(target.value)}, not a schema`) };
      // OpenAPI 3.1 lets a $ref have siblings (a description); they stay beside it.
      const rest = this.inlineSchema(siblings, at);
      return Object.keys(rest).length ? { ...rest, allOf: [ref] } : ref;
    }
    if (shared && COMPOSITE.some((k) => k in node)) return this.tableRef(at, node);
    return this.inlineSchema(node, at);
  }

  private tableRef(at: string, node: Obj): Schema {
    if (!(at in this.schemas)) {
      this.schemas[at] = {};
      this.pending.push({ at, node });
    }
    return { $ref: at };
  }

  /** Copies a schema down to SCHEMA_KEYWORDS, its subschemas through `schema()`. */
  private inlineSchema(node: Obj, at: string): Obj {
    const out: Obj = {};
    for (const [key, value] of Object.entries(node)) {
      if (!SCHEMA_KEYWORDS.has(key) || value === undefined) continue;
      const here = `${at}/${key}`;
      if (key === 'properties' && isObj(value)) {
        out.properties = Object.fromEntries(
          Object.entries(value).map(([name, s]) => [name, this.schema(s, `${here}/${escape(name)}`) ?? {}]),
        );
      } else if (SUBSCHEMA_LISTS.has(key) && Array.isArray(value)) {
        out[key] = value.map((s, i) => this.schema(s, `${here}/${i}`) ?? {});
      } else if (SUBSCHEMAS.has(key)) {
        // OpenAPI 3.1 / JSON Schema 2020 allows tuple `items` arrays; keep each member reduced.
        out[key] = Array.isArray(value)
          ? value.map((s, i) => this.schema(s, `${here}/${i}`) ?? {})
          : this.schema(value, here);
      } else {
        out[key] = value;
      }
    }
    return out;
  }

  /** Follows `node`'s `$ref` chain to a value, warning (and giving undefined) where a `$ref` is broken. */
  private follow(node: unknown, at: string, shared = false): Located | undefined {
    const found = this.resolve(node, at, shared);
    if ('problem' in found) {
      this.warn(found.at, found.problem);
      return undefined;
    }
    return found;
  }

  /** Follows `node`'s `$ref` chain to a value, or says why it cannot: points nowhere, leaves the document, loops. */
  private resolve(node: unknown, at: string, shared: boolean): Located | { problem: string; at: string } {
    let value = node;
    let where = at;
    let viaRef = shared;
    const seen = new Set<string>();
    while (isObj(value) && typeof value.$ref === 'string') {
      const ref = value.$ref;
      if (!ref.startsWith('#'))
        return { at: where, problem: `$ref ${ref} leaves the document; bundle external files into the spec` };
      if (seen.has(ref)) return { at: where, problem: `$ref ${ref} refers to itself in a loop` };
      seen.add(ref);
      const target = this.target(ref);
      if (!target)
        return { at: where, problem: `$ref ${ref} points nowhere: the spec has nothing at that JSON pointer` };
      value = target.value;
      where = target.at;
      viaRef = true;
    }
    return { value, at: where, shared: viaRef };
  }

  /** What a local `$ref` points at, and its canonical pointer (so `#/a%20b` and `#/a b` are one entry); remembered per $ref. */
  private target(ref: string): { value: unknown; at: string } | undefined {
    if (this.targets.has(ref)) return this.targets.get(ref);
    const segments = parsePointer(ref);
    let value: unknown = this.doc;
    for (const segment of segments) {
      if (Array.isArray(value) && /^\d+$/.test(segment)) value = value[Number(segment)];
      else if (isObj(value) && Object.hasOwn(value, segment)) value = value[segment];
      else value = undefined;
      if (value === undefined) break;
    }
    const target = value === undefined ? undefined : { value, at: `#${segments.map((s) => `/${escape(s)}`).join('')}` };
    this.targets.set(ref, target);
    return target;
  }

  /** Records a tolerated defect (once); returns the problem, for the `unresolved` field of a broken $ref. */
  private warn(at: string, problem: string): string {
    const text = `${at}: ${problem}`;
    if (!this.warned.has(text)) {
      this.warned.add(text);
      if (this.warnings.length < MAX_WARNINGS) this.warnings.push(text);
    }
    return problem;
  }
}

/** `#/a/b~1c` → ['a', 'b/c']; a $ref is a URI fragment, so percent-encoding is decoded too. */
function parsePointer(ref: string): string[] {
  if (ref === '#') return [];
  return ref
    .slice(2)
    .split('/')
    .map((s) => {
      let segment = s;
      try {
        segment = decodeURIComponent(s);
      } catch {
        // Not percent-encoded after all: use it as written.
      }
      return segment.replace(/~1/g, '/').replace(/~0/g, '~');
    });
}

function escape(segment: string): string {
  return /[~/]/.test(segment) ? segment.replace(/~/g, '~0').replace(/\//g, '~1') : segment;
}

/** Operation-level parameters override path-level ones with the same name and location. */
function mergeParameters(pathLevel: Located[], opLevel: Located[]): Located[] {
  const merged = new Map<string, Located>();
  for (const p of [...pathLevel, ...opLevel]) {
    const v = p.value as Obj;
    merged.set(`${String(v.in)}:${String(v.name)}`, p);
  }
  return [...merged.values()];
}

function parameterBasics(p: Obj): Parameter {
  return compact({
    name: String(p.name),
    in: String(p.in),
    required: p.required === true,
    description: str(p.description),
    deprecated: p.deprecated === true ? true : undefined,
  });
}

/** A Swagger 2.0 non-body parameter carries its schema inline; `required` there means the parameter, not properties. */
function schemaPart(p: Obj): Obj {
  return Object.fromEntries(
    Object.entries(p).filter(([k]) => SCHEMA_KEYWORDS.has(k) && k !== 'required' && k !== 'description'),
  );
}

/** Drops undefined fields, so absent ones do not show up as keys. */
function compact<T extends object>(fields: T): T {
  const out: Obj = {};
  for (const key in fields) if (fields[key] !== undefined) out[key] = fields[key];
  return out as T;
}

function str(value: unknown): string | undefined {
  return typeof value === 'string' ? value : undefined;
}

function stringList(value: unknown): string[] | undefined {
  return Array.isArray(value) ? value.filter((v): v is string => typeof v === 'string') : undefined;
}

function describe(value: unknown): string {
  const text = JSON.stringify(value) ?? String(value);
  const shown = text.length > 40 ? `${text.slice(0, 40)}…` : text;
  return `${value === null ? 'null' : Array.isArray(value) ? 'a list' : `a ${typeof value}`} (${shown})`;
}

function isJson(mediaType: string): boolean {
  return /^application\/(.+\+)?json\b/i.test(mediaType);
}

function isObj(value: unknown): value is Obj {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}
