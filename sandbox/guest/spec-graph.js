// @ts-check
/**
 * The specs as the search sandbox holds them: a graph. Each provider's record (providers/spec.ts)
 * arrives as JSON with every shared schema once, in its `schemas` table, referred to as
 * `{ $ref: pointer }`. Here each such reference is replaced by the table's object itself, so a
 * search reads through schemas as if they were expanded (`op.requestBody.schema.properties.email`)
 * while memory holds each one once, cycles included.
 *
 * Writing the graph out is where it would blow up (Stripe's schemas expand to gigabytes of JSON),
 * so every serialization goes through `graphReplacer`: a table schema is written out in full the
 * first time it is met within `MAX_REF_DEPTH` named levels, and as `{ $ref }` otherwise. `types()`
 * writes compact TypeScript declarations from the same graph, bounded in depth and characters.
 *
 * An ES module that runs inside the search isolate and that host tests import; it uses nothing but
 * the language.
 *
 * @import { SpecRecord, Schema, Operation } from '../../providers/spec.ts'
 * @import { UpstreamTool } from '../../providers/mcp-client.ts'
 */

/** Named schemas nested deeper than this in one serialization are written as `{ $ref }`. */
export const MAX_REF_DEPTH = 2;
/** A search result, or one JSON.stringify inside a search, stops at about this many characters. */
export const MAX_JSON_CHARS = 16_000_000;

/**
 * @typedef {{ provider: string, source: string, error?: string, warnings: string[] }} SpecMeta
 * What the host says of each provider besides its record.
 */

/**
 * The `spec` global: OpenAPI-shaped `paths`, the flat `operations` and `tools`, and per provider
 * its summary, own `paths`, `schemas` table and any error or warnings. Frozen; reading a key that
 * `spec` or `spec.providers` lacks throws, naming the keys there are.
 * @param {Array<{ meta: SpecMeta, record?: SpecRecord }>} loaded
 * @returns {{ spec: Record<string, unknown>, refOf: WeakMap<object, string> }}
 */
export function buildSpec(loaded) {
  /** @type {WeakMap<object, string>} */
  const refOf = new WeakMap();
  /** @type {Record<string, Record<string, unknown>>} */
  const paths = {};
  /** @type {unknown[]} */
  const operations = [];
  /** @type {unknown[]} */
  const tools = [];
  /** @type {Record<string, unknown>} */
  const providers = {};
  for (const { meta, record } of loaded) {
    /** @type {Record<string, unknown>} */
    const view = { source: meta.source };
    providers[meta.provider] = view;
    if (meta.error !== undefined) view.error = meta.error;
    if (meta.warnings.length) view.warnings = meta.warnings;
    if (!record) {
      Object.assign(view, { operations: 0, paths: {}, schemas: {} });
      continue;
    }
    link(record, refOf);
    /** @type {Record<string, Record<string, unknown>>} */
    const own = {};
    for (const op of record.operations) {
      const entry = { provider: meta.provider, ...op };
      operations.push(entry);
      const method = op.method.toLowerCase();
      (own[op.path] ??= {})[method] = entry;
      // Two providers with the same path and method: spec.paths keeps the first, providers.NAME.paths each.
      const merged = (paths[op.path] ??= {});
      if (!(method in merged)) merged[method] = entry;
    }
    for (const tool of record.tools ?? []) tools.push({ provider: meta.provider, ...tool });
    Object.assign(view, {
      title: record.title,
      description: record.description,
      version: record.version,
      ...(record.tools ? { tools: record.tools.length } : { operations: record.operations.length }),
      paths: own,
      schemas: record.schemas,
    });
  }
  freezeGraph([paths, operations, tools, providers]);
  const spec = Object.freeze({
    paths,
    operations,
    tools,
    providers: strictKeys(providers, 'spec.providers', 'providers'),
  });
  return { spec: strictKeys(spec, 'spec', 'keys'), refOf };
}

/**
 * Freezes everything reachable from `roots`: plain objects and arrays, shared and cyclic ones
 * included (each once).
 * @param {object[]} roots
 */
function freezeGraph(roots) {
  const stack = roots.slice();
  while (stack.length) {
    const value = /** @type {object} */ (stack.pop());
    if (Object.isFrozen(value)) continue;
    Object.freeze(value);
    for (const child of /** @type {unknown[]} */ (Array.isArray(value) ? value : Object.values(value))) {
      if (child !== null && typeof child === 'object' && !Object.isFrozen(child)) stack.push(child);
    }
  }
}

/**
 * JSON.stringify for the search sandbox: the same as the builtin, except that the spec's graph is
 * written out boundedly (graphReplacer), whatever replacer the caller passes.
 * @param {WeakMap<object, string>} refOf
 * @param {typeof JSON.stringify} nativeStringify
 * @returns {typeof JSON.stringify}
 */
export function boundedStringify(refOf, nativeStringify) {
  return /** @type {typeof JSON.stringify} */ (
    function stringify(
      /** @type {unknown} */ value,
      /** @type {unknown} */ replacer,
      /** @type {string | number | undefined} */ space,
    ) {
      const bounded = graphReplacer(refOf);
      if (Array.isArray(replacer)) {
        // A list of keys filters objects: applied to the bounded text, so it works as the builtin's.
        const text = nativeStringify(value, bounded);
        return text === undefined ? text : nativeStringify(JSON.parse(text), replacer, space);
      }
      const own =
        typeof replacer === 'function'
          ? /** @type {(this: unknown, key: string, value: unknown) => unknown} */ (replacer)
          : undefined;
      return nativeStringify(
        value,
        own
          ? function (key, v) {
              return bounded.call(this, key, own.call(this, key, v));
            }
          : bounded,
        space,
      );
    }
  );
}

/**
 * Replaces every `{ $ref }` that names a table entry by the entry itself, in the operations and
 * in the table; remembers each entry's pointer in `refOf`. Iterative: schemas nest deeply.
 * @param {SpecRecord} record
 * @param {WeakMap<object, string>} refOf
 */
function link(record, refOf) {
  const table = /** @type {Record<string, unknown>} */ (record.schemas);
  for (const [pointer, schema] of Object.entries(table)) if (isObject(schema)) refOf.set(schema, pointer);
  /** @type {unknown[]} */
  const stack = [record.operations, ...Object.values(table)];
  while (stack.length) {
    const value = /** @type {Record<string, unknown>} */ (stack.pop());
    for (const key of Object.keys(value)) {
      const child = value[key];
      if (typeof child !== 'object' || child === null) continue;
      const target = isRef(child) ? table[child.$ref] : undefined;
      if (target !== undefined) value[key] = target;
      else stack.push(child);
    }
  }
}

/**
 * A JSON.stringify replacer that writes the graph out boundedly: a named schema in full the first
 * time within MAX_REF_DEPTH named levels, as `{ $ref }` after that or deeper. Schemas without
 * subschemas are always written in full (they cannot nest). One replacer per serialization.
 * @param {WeakMap<object, string>} refOf
 * @returns {(this: unknown, key: string, value: unknown) => unknown}
 */
export function graphReplacer(refOf) {
  /** @type {WeakMap<object, number>} */
  const depthOf = new WeakMap();
  const written = new WeakSet();
  let chars = 0;
  return function (key, value) {
    chars += key.length + (typeof value === 'string' ? value.length : 4);
    if (chars > MAX_JSON_CHARS)
      throw new RangeError(
        `more than ${MAX_JSON_CHARS / 1e6} million characters of JSON; return fewer fields or filter more narrowly`,
      );
    if (typeof value !== 'object' || value === null) return value;
    const parent = (typeof this === 'object' && this !== null && depthOf.get(this)) || 0;
    const pointer = refOf.get(value);
    if (pointer === undefined || isLeaf(value)) {
      depthOf.set(value, parent);
      return value;
    }
    if (written.has(value) || parent >= MAX_REF_DEPTH) return { $ref: pointer };
    written.add(value);
    depthOf.set(value, parent + 1);
    return value;
  };
}

/** Keywords holding subschemas: a schema with none of them is a leaf. */
const NESTING = ['properties', 'items', 'prefixItems', 'allOf', 'oneOf', 'anyOf', 'not', 'additionalProperties'];

/** @param {object} schema */
function isLeaf(schema) {
  for (const key of NESTING) {
    const child = /** @type {Record<string, unknown>} */ (schema)[key];
    if (typeof child === 'object' && child !== null) return false;
  }
  return true;
}

/**
 * `target` wrapped so that reading a key it lacks throws a TypeError listing the keys it has,
 * instead of giving undefined (`spec.components` → "spec has no key "components"; it has paths, …").
 * Probes that JavaScript itself makes (then, toJSON, symbols) still give undefined.
 * @template {object} T
 * @param {T} target
 * @param {string} name how a script names it, e.g. `spec` or `spec.providers`
 * @param {string} what what its keys are, e.g. `keys` or `providers`
 * @returns {T}
 */
export function strictKeys(target, name, what) {
  return new Proxy(target, {
    get(t, key, receiver) {
      if (typeof key === 'string' && !(key in t) && key !== 'then' && key !== 'toJSON') {
        const keys = Object.keys(t);
        throw new TypeError(
          `${name} has no ${what === 'keys' ? 'key' : what.replace(/s$/, '')} "${key}"; it has ${keys.length ? keys.join(', ') : 'none'}`,
        );
      }
      return Reflect.get(t, key, receiver);
    },
  });
}

// ---- types(): TypeScript declarations --------------------------------------------------------------

/** Named types declared below the operation, to this many levels. */
const TYPES_DEPTH = 2;
/** The declarations stop growing at about this many characters (≈ a quarter as many tokens). */
const TYPES_MAX_CHARS = 6000;
const DESCRIPTION_CHARS = 80;
const ENUM_VALUES = 20;

/**
 * Compact TypeScript for an operation (its `Request`: path and query parameters, body; its
 * `Response`: the 2xx body), a tool of spec.tools (`Input`, `Output`), or a schema. Named schemas
 * become type aliases, declared to `depth` levels and within about `maxChars`; the rest are listed
 * at the end as not expanded.
 * @param {WeakMap<object, string>} refOf
 * @param {unknown} target
 * @param {{ depth?: number, maxChars?: number }} [options]
 * @returns {string}
 */
export function typesOf(refOf, target, options = {}) {
  if (!isObject(target))
    throw new TypeError(
      'types() takes an operation (from spec.operations or spec.paths), a tool (spec.tools) or a schema',
    );
  const writer = new TypeWriter(refOf, options.depth ?? TYPES_DEPTH, options.maxChars ?? TYPES_MAX_CHARS);
  const t = /** @type {Record<string, unknown>} */ (target);
  if (typeof t.method === 'string' && typeof t.path === 'string')
    writer.operation(/** @type {Operation} */ (/** @type {unknown} */ (t)));
  else if (typeof t.name === 'string' && ('inputSchema' in t || 'outputSchema' in t))
    writer.tool(/** @type {UpstreamTool} */ (/** @type {unknown} */ (t)));
  else writer.declare('Schema', /** @type {Schema} */ (t), 0);
  return writer.text();
}

class TypeWriter {
  /**
   * @param {WeakMap<object, string>} refOf
   * @param {number} depth
   * @param {number} maxChars
   */
  constructor(refOf, depth, maxChars) {
    this.refOf = refOf;
    this.depth = depth;
    this.maxChars = maxChars;
    /** @type {string[]} */
    this.out = [];
    this.chars = 0;
    /** @type {Map<object, string>} schema → its type name */
    this.names = new Map();
    this.used = new Set(['Request', 'Response', 'Input', 'Output', 'Schema']);
    /** @type {Array<{ schema: object, level: number }>} named schemas to declare, breadth first */
    this.queue = [];
    /** @type {Set<object>} */
    this.declared = new Set();
  }

  /** @param {Operation} op */
  operation(op) {
    const head = [op.method, op.path, op.operationId && `(${op.operationId})`].filter(Boolean).join(' ');
    this.line(`// ${head}${op.summary ? `: ${clip(op.summary)}` : ''}`);
    /** @type {string[]} */
    const fields = [];
    for (const where of ['path', 'query']) {
      const params = (op.parameters ?? []).filter((p) => p.in === where);
      if (!params.length) continue;
      const body = params.map((p) => this.member(p.name, p.required, p.schema ?? {}, p.description, 2));
      const required = params.some((p) => p.required);
      fields.push(`  ${where}${required ? '' : '?'}: {\n${body.join('\n')}\n  };`);
    }
    const body = op.requestBody;
    if (body) {
      const type = body.schema === undefined ? 'unknown' : this.type(body.schema, 1, 0);
      const note = body.contentType && body.contentType !== 'application/json' ? ` // ${body.contentType}` : '';
      fields.push(`  body${body.required ? '' : '?'}: ${type};${note}`);
    }
    this.line(fields.length ? `type Request = {\n${fields.join('\n')}\n};` : 'type Request = {};');
    const ok = Object.entries(op.responses ?? {}).filter(([status]) => /^2/.test(status));
    const types = ok.map(([, r]) => (r.schema === undefined ? 'void' : this.type(r.schema, 0, 0)));
    const statuses = ok.map(([status, r]) => `${status}${r.description ? ` ${clip(r.description)}` : ''}`);
    this.line(
      `type Response = ${types.length ? [...new Set(types)].join(' | ') : 'unknown'};${statuses.length ? ` // ${statuses.join('; ')}` : ''}`,
    );
    this.drain();
  }

  /** @param {UpstreamTool} tool */
  tool(tool) {
    this.line(`// ${tool.name}${tool.description ? `: ${clip(tool.description)}` : ''}`);
    this.line(
      `type Input = ${tool.inputSchema === undefined ? 'unknown' : this.type(/** @type {Schema} */ (tool.inputSchema), 0, 0)};`,
    );
    this.line(
      `type Output = ${tool.outputSchema === undefined ? 'unknown' : this.type(/** @type {Schema} */ (tool.outputSchema), 0, 0)};`,
    );
    this.drain();
  }

  /**
   * @param {string} name
   * @param {Schema} schema
   * @param {number} level
   */
  declare(name, schema, level) {
    if (isObject(schema)) this.declared.add(schema);
    const description =
      isObject(schema) && typeof schema.description === 'string' ? `/** ${clip(schema.description)} */\n` : '';
    this.line(`${description}type ${name} = ${this.type(schema, 0, level, true)};`);
    this.drain();
  }

  drain() {
    while (this.queue.length && this.chars < this.maxChars) {
      const { schema, level } = /** @type {{ schema: object, level: number }} */ (this.queue.shift());
      if (this.declared.has(schema)) continue;
      this.declared.add(schema);
      const s = /** @type {Record<string, unknown>} */ (schema);
      const note = `${typeof s.description === 'string' ? ` ${clip(s.description)}` : ''} (${this.refOf.get(schema)})`;
      this.line(`/**${note} */\ntype ${this.nameOf(schema)} = ${this.type(s, 0, level, true)};`);
    }
    const skipped = [...this.names.keys()].filter((s) => !this.declared.has(s));
    if (skipped.length) {
      const list = skipped.map((s) => `${this.names.get(s)} = ${this.refOf.get(s)}`);
      this.line(
        `// Not expanded (depth or size limit): ${list.join(', ')}. Pass spec.providers[provider].schemas[pointer] to types() for one.`,
      );
    }
  }

  /**
   * The TypeScript type of `schema`, written at indentation `indent`; `level` counts the named
   * types above it (a named schema met here is declared if level + 1 ≤ depth). A named schema
   * becomes its name, unless `inline`.
   * @param {Schema} schema
   * @param {number} indent
   * @param {number} level
   * @param {boolean} [inline]
   * @returns {string}
   */
  type(schema, indent, level, inline = false) {
    if (schema === true) return 'unknown';
    if (schema === false) return 'never';
    if (!isObject(schema)) return 'unknown';
    if (!inline && this.refOf.has(schema) && !isLeaf(schema)) {
      const name = this.nameOf(schema);
      if (!this.declared.has(schema) && level < this.depth) this.queue.push({ schema, level: level + 1 });
      return name;
    }
    const s = schema;
    if (typeof s.$ref === 'string')
      return `unknown /* ${s.$ref}${typeof s.unresolved === 'string' ? `: ${s.unresolved}` : ''} */`;
    /** @type {string[]} */
    let parts = [];
    if (Array.isArray(s.allOf))
      parts.push(
        schemas(s.allOf)
          .map((x) => this.wrap(this.type(x, indent, level)))
          .join(' & '),
      );
    for (const key of ['oneOf', 'anyOf']) {
      if (Array.isArray(s[key]))
        parts.push([...new Set(schemas(s[key]).map((x) => this.type(x, indent, level)))].join(' | '));
    }
    if (parts.length && (s.properties || s.type === 'object')) parts = [parts.map((p) => this.wrap(p)).join(' & ')];
    const own = this.ownType(s, indent, level);
    if (own !== undefined) parts.push(own);
    let type =
      parts.length === 0 ? 'unknown' : parts.length === 1 ? parts[0] : parts.map((p) => this.wrap(p)).join(' & ');
    if (s.nullable === true) type = `${this.wrap(type)} | null`;
    return type;
  }

  /**
   * The type the schema's own keywords give (type, enum, const, properties, items), if any.
   * @param {Record<string, unknown>} s
   * @param {number} indent
   * @param {number} level
   * @returns {string | undefined}
   */
  ownType(s, indent, level) {
    if ('const' in s) return JSON.stringify(s.const);
    if (Array.isArray(s.enum)) {
      const values = /** @type {unknown[]} */ (s.enum);
      const shown = values.slice(0, ENUM_VALUES).map((v) => JSON.stringify(v));
      return shown.join(' | ') + (values.length > ENUM_VALUES ? ` /* …${values.length - ENUM_VALUES} more */` : '');
    }
    /** @type {string[]} */
    const types = Array.isArray(s.type)
      ? /** @type {unknown[]} */ (s.type).filter((t) => typeof t === 'string')
      : typeof s.type === 'string'
        ? [s.type]
        : [];
    if (!types.length && (s.properties || s.additionalProperties !== undefined)) types.push('object');
    if (!types.length && s.items) types.push('array');
    if (!types.length) return undefined;
    return types
      .map((/** @type {string} */ t) => {
        if (t === 'integer' || t === 'number') return 'number';
        if (t === 'string' || t === 'boolean' || t === 'null') return t;
        if (t === 'array') {
          if (Array.isArray(s.items))
            return `[${schemas(s.items)
              .map((x) => this.type(x, indent, level))
              .join(', ')}]`;
          const items = s.items === undefined ? 'unknown' : this.type(/** @type {Schema} */ (s.items), indent, level);
          return `${this.wrap(items)}[]`;
        }
        if (t === 'object') return this.objectType(s, indent, level);
        return 'unknown';
      })
      .join(' | ');
  }

  /**
   * @param {Record<string, unknown>} s
   * @param {number} indent
   * @param {number} level
   */
  objectType(s, indent, level) {
    const properties = isObject(s.properties) ? Object.entries(s.properties) : [];
    const required = new Set(Array.isArray(s.required) ? /** @type {unknown[]} */ (s.required) : []);
    /** @type {string[]} */
    const lines = [];
    let chars = this.chars;
    for (const [i, [name, schema]] of properties.entries()) {
      if (chars > this.maxChars) {
        lines.push(`${pad(indent + 1)}// …${properties.length - i} more properties`);
        break;
      }
      const description = isObject(schema) ? schema.description : undefined;
      const line = this.member(
        name,
        required.has(name),
        /** @type {Schema} */ (schema),
        description,
        indent + 1,
        level,
      );
      lines.push(line);
      chars += line.length + 1;
    }
    const extra = s.additionalProperties;
    if (extra !== undefined && extra !== false) {
      const type = extra === true ? 'unknown' : this.type(/** @type {Schema} */ (extra), indent + 1, level);
      lines.push(`${pad(indent + 1)}[key: string]: ${type};`);
    }
    if (!lines.length) return 'Record<string, unknown>';
    return `{\n${lines.join('\n')}\n${pad(indent)}}`;
  }

  /**
   * One property line: `name?: type; // description`.
   * @param {string} name
   * @param {boolean} required
   * @param {Schema} schema
   * @param {unknown} description
   * @param {number} indent
   * @param {number} [level]
   */
  member(name, required, schema, description, indent, level = 0) {
    const key = /^[A-Za-z_$][\w$]*$/.test(name) ? name : JSON.stringify(name);
    const named = isObject(schema) && this.refOf.has(schema) && !isLeaf(schema);
    const note = typeof description === 'string' && !named ? ` // ${clip(description)}` : '';
    return `${pad(indent)}${key}${required ? '' : '?'}: ${this.type(schema, indent, level)};${note}`;
  }

  /** @param {object} schema */
  nameOf(schema) {
    let name = this.names.get(schema);
    if (name) return name;
    const pointer = this.refOf.get(schema) ?? '';
    const last = pointer
      .slice(pointer.lastIndexOf('/') + 1)
      .replace(/~1/g, '/')
      .replace(/~0/g, '~');
    const base = /^[A-Za-z_$]/.test(last) ? last.replace(/[^\w$]+/g, '_') : `T_${last.replace(/[^\w$]+/g, '_')}`;
    name = base;
    for (let n = 2; this.used.has(name); n++) name = `${base}_${n}`;
    this.used.add(name);
    this.names.set(schema, name);
    return name;
  }

  /** @param {string} type */
  wrap(type) {
    return /^[\w$."'[\]<>, ]+$/.test(type) || type.startsWith('{') ? type : `(${type})`;
  }

  /** @param {string} text */
  line(text) {
    this.out.push(text);
    this.chars += text.length + 1;
  }

  text() {
    return this.out.join('\n');
  }
}

/**
 * A list of subschemas, as a schema keyword holds them.
 * @param {unknown[]} list
 * @returns {Schema[]}
 */
function schemas(list) {
  return /** @type {Schema[]} */ (list);
}

/** @param {string} text */
function clip(text) {
  const line = text.replace(/\s+/g, ' ').trim();
  return line.length > DESCRIPTION_CHARS ? `${line.slice(0, DESCRIPTION_CHARS - 1)}…` : line;
}

/** @param {number} indent */
function pad(indent) {
  return '  '.repeat(indent);
}

/**
 * @param {unknown} value
 * @returns {value is { $ref: string }}
 */
function isRef(value) {
  return isObject(value) && typeof (/** @type {{ $ref?: unknown }} */ (value).$ref) === 'string';
}

/**
 * @param {unknown} value
 * @returns {value is Record<string, unknown>}
 */
function isObject(value) {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}
