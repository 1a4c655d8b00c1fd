// Runs INSIDE the isolate, before the user's script. It defines the globals a script sees
// (provider clients, input, step, progress, sleep, console) and a control object the host drives
// with JSON strings only: start(main) → report, deliver(json) → report. No host object ever
// enters the isolate; effects are requests the host reads out of the report after the isolate
// has gone quiet (every pending promise waits on an effect).
//
// The builtins the runtime relies on are captured first, so a script that overwrites JSON or
// Promise.prototype.then breaks only its own job, and the host validates every report anyway.
globalThis.__dcmInstall = function install(setupJson) {
  'use strict';
  const { parse, stringify } = JSON;
  const NativePromise = Promise;
  const NativeDate = Date;
  const NativeError = Error;
  const NativeTypeError = TypeError;
  const freeze = Object.freeze;
  const defineProperty = Object.defineProperty;
  const isArray = Array.isArray;
  const setup = parse(setupJson);

  // ---- state -------------------------------------------------------------------------------
  let now = setup.now;
  let replaying = setup.replaying;
  let issued = []; // requests since the last report
  let inFlight = []; // settle functions of the effects of the last report, in order
  let newSteps = [];
  let stepCount = 0;
  const openSteps = new Map(); // index → name of steps whose body has not settled yet
  let recordedSteps = new Map(setup.recordedSteps.map((s) => [s.index, s]));
  let logs = [];
  let logBytes = 0;
  let droppedLogs = 0;
  let progressState = null;
  let outcome = null;

  // ---- values crossing the boundary are plain JSON, nothing else -----------------------------
  function toJson(value, what) {
    let text;
    try {
      text = stringify(value, (key, v) => {
        const type = typeof v;
        if (type === 'function' || type === 'symbol' || type === 'bigint') {
          throw new NativeTypeError(
            `${what} is not JSON-serializable: found a ${type} at ${key === '' ? 'the top level' : `key "${key}"`}`,
          );
        }
        return v;
      });
    } catch (e) {
      if (e instanceof NativeTypeError && String(e.message).startsWith(what)) throw e;
      throw new NativeTypeError(`${what} is not JSON-serializable: ${e && e.message}`);
    }
    return text === undefined ? 'null' : text;
  }

  function errorInfo(e) {
    if (e instanceof NativeError) {
      const info = { name: String(e.name), message: String(e.message), stack: String(e.stack) };
      const frame = /script\.js:(\d+):(\d+)/.exec(info.stack);
      if (frame) {
        info.line = Number(frame[1]);
        info.column = Number(frame[2]);
      }
      // Frames of this runtime say nothing useful to the script's author.
      info.stack = info.stack
        .split('\n')
        .filter((l) => !l.includes('dcm-runtime.js') && !l.includes('<isolated-vm'))
        .join('\n');
      return info;
    }
    let message;
    try {
      message = typeof e === 'string' ? e : stringify(e);
    } catch {
      message = String(e);
    }
    return { name: 'Error', message: `the script threw a non-Error value: ${message}` };
  }

  // ---- effects ------------------------------------------------------------------------------
  function issue(request) {
    issued.push(request);
    return new NativePromise((resolve, reject) => inFlight.push({ resolve, reject }));
  }

  class ApiError extends NativeError {
    constructor(error) {
      super(error.message);
      this.name = error.name || 'ApiError';
      if (error.status !== undefined) this.status = error.status;
      if (error.body !== undefined) this.body = error.body;
    }
  }

  function deliver(outcomes) {
    const settles = inFlight;
    inFlight = [];
    if (outcomes.length !== settles.length)
      throw new NativeError(`runtime: ${outcomes.length} outcomes for ${settles.length} effects`);
    outcomes.forEach((o, i) => (o.ok ? settles[i].resolve(o.value) : settles[i].reject(new ApiError(o.error))));
  }

  const METHODS = ['GET', 'POST', 'PUT', 'PATCH', 'DELETE', 'HEAD'];

  function providerClient(provider) {
    return freeze({
      request(options) {
        try {
          if (options === null || typeof options !== 'object')
            throw new NativeTypeError(`${provider}.request() takes an object: { method, path, query, body }`);
          const method = String(options.method || 'GET').toUpperCase();
          if (!METHODS.includes(method))
            throw new NativeTypeError(
              `${provider}.request(): method must be one of ${METHODS.join(', ')}; got ${options.method}`,
            );
          const path = options.path;
          if (typeof path !== 'string' || !path.startsWith('/') || path.startsWith('//')) {
            throw new NativeTypeError(
              `${provider}.request(): path must be a string starting with "/" relative to the provider's base URL; got ${stringify(path)}`,
            );
          }
          const request = { kind: 'http', provider, method, path };
          if (options.query !== undefined) request.query = parse(toJson(options.query, `${provider}.request() query`));
          if (options.body !== undefined) request.body = parse(toJson(options.body, `${provider}.request() body`));
          return issue(request);
        } catch (e) {
          return NativePromise.reject(e);
        }
      },
    });
  }

  function checkpoint(state) {
    try {
      const text = toJson(state, 'the checkpoint state');
      if (text.length > setup.limits.maxCheckpointBytes) {
        throw new NativeError(
          `checkpoint(state): the state is ${text.length} bytes; the limit is ${setup.limits.maxCheckpointBytes} (limits.maxCheckpointBytes). Keep a checkpoint compact (counters, cursors, ids) and save bulk data with step().`,
        );
      }
      return issue({ kind: 'checkpoint', state: parse(text) });
    } catch (e) {
      return NativePromise.reject(e);
    }
  }

  function toolClient(provider, tools) {
    const client = {};
    for (const tool of tools) {
      client[tool] = (args) => {
        try {
          const request = { kind: 'tool', provider, tool };
          if (args !== undefined) request.args = parse(toJson(args, `${provider}.${tool}() arguments`));
          return issue(request);
        } catch (e) {
          return NativePromise.reject(e);
        }
      };
    }
    return freeze(client);
  }

  function sleep(ms) {
    if (typeof ms !== 'number' || !(ms >= 0) || ms > 366 * 24 * 3600 * 1000) {
      return NativePromise.reject(
        new NativeTypeError(`sleep(ms): ms must be a number of milliseconds between 0 and one year; got ${ms}`),
      );
    }
    return issue({ kind: 'sleep', ms: Math.round(ms) });
  }

  function step(name, fn) {
    if (typeof name !== 'string' || name === '')
      return NativePromise.reject(new NativeTypeError('step(name, fn): name must be a non-empty string'));
    if (typeof fn !== 'function')
      return NativePromise.reject(new NativeTypeError(`step("${name}", fn): fn must be a function`));
    const index = stepCount++;
    const recorded = recordedSteps.get(index);
    if (recorded && recorded.name !== name && setup.lenient) {
      // A resumed job's new code went another way: from here on, steps run for real.
      recordedSteps = new Map();
    } else if (recorded) {
      if (recorded.name !== name) {
        return NativePromise.reject(
          new NativeError(
            `replay diverged: step #${index} was "${recorded.name}" when the job first ran, but the script now calls step("${name}"). The script must make the same calls in the same order each time it runs.`,
          ),
        );
      }
      return NativePromise.resolve(parse(recorded.json));
    }
    openSteps.set(index, name);
    return NativePromise.resolve()
      .then(() => fn())
      .then(
        (value) => {
          openSteps.delete(index);
          const text = toJson(value, `the value of step("${name}")`);
          if (text.length > setup.limits.maxStepBytes) {
            throw new NativeError(
              `the value of step("${name}") is ${text.length} bytes; the limit is ${setup.limits.maxStepBytes} (limits.maxStepBytes). Save less, or split it into several steps.`,
            );
          }
          newSteps.push({ index, name, json: text });
          return parse(text);
        },
        (e) => {
          openSteps.delete(index);
          throw e;
        },
      );
  }

  // ---- observability ------------------------------------------------------------------------
  function formatArg(a) {
    if (typeof a === 'string') return a;
    if (a instanceof NativeError) return String(a.stack || a);
    try {
      const text = stringify(a);
      return text === undefined ? String(a) : text;
    } catch {
      return String(a);
    }
  }

  function log(level) {
    return (...args) => {
      if (replaying) return; // these lines were captured when the round first ran
      const line = (level === 'log' ? '' : `[${level}] `) + args.map(formatArg).join(' ');
      if (logBytes + line.length > setup.limits.maxLogBytes) {
        droppedLogs++;
        return;
      }
      logBytes += line.length;
      logs.push(line);
    };
  }

  function progress(done, total, message) {
    if (typeof done !== 'number' || !Number.isFinite(done))
      throw new NativeTypeError(`progress(done, total, message): done must be a number; got ${done}`);
    progressState = {
      done,
      total: typeof total === 'number' && Number.isFinite(total) ? total : null,
      message: message === undefined || message === null ? null : String(message).slice(0, 500),
    };
  }

  // ---- determinism: clock and randomness come from the journal, not the machine ----------------
  function DurableDate(...args) {
    if (!new.target) return new NativeDate(now).toString();
    return args.length === 0 ? new NativeDate(now) : new NativeDate(...args);
  }
  DurableDate.prototype = NativeDate.prototype;
  DurableDate.now = () => now;
  DurableDate.parse = NativeDate.parse;
  DurableDate.UTC = NativeDate.UTC;

  let seed = setup.seed >>> 0;
  function random() {
    // mulberry32: tiny, fast, and the same sequence on every replay of the job.
    seed = (seed + 0x6d2b79f5) >>> 0;
    let t = seed;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  }

  // ---- CSV (RFC 4180), so scripts do not hand-roll one ------------------------------------------
  function csvParse(text, options) {
    if (typeof text !== 'string')
      throw new NativeTypeError(`CSV.parse(text): text must be a string; got ${typeof text}`);
    const opts = options || {};
    const delimiter = opts.delimiter === undefined ? ',' : String(opts.delimiter);
    if (delimiter.length !== 1 || delimiter === '"' || delimiter === '\n' || delimiter === '\r')
      throw new NativeTypeError('CSV.parse: delimiter must be one character other than a quote or newline');
    const rows = [];
    let row = [];
    let i = text.charCodeAt(0) === 0xfeff ? 1 : 0; // skip a byte-order mark
    const n = text.length;
    const d = delimiter.charCodeAt(0);
    let line = 1;
    for (;;) {
      // One field per pass.
      let field;
      if (text.charCodeAt(i) === 34) {
        const start = line;
        let j = i + 1;
        let value = '';
        for (;;) {
          const q = text.indexOf('"', j);
          if (q === -1) throw new NativeError(`CSV.parse: unterminated quoted field starting on line ${start}`);
          value += text.slice(j, q);
          for (let k = j; k < q; k++) if (text.charCodeAt(k) === 10) line++;
          if (text.charCodeAt(q + 1) === 34) {
            value += '"';
            j = q + 2;
          } else {
            i = q + 1;
            break;
          }
        }
        field = value;
        const c = text.charCodeAt(i);
        if (i < n && c !== d && c !== 10 && c !== 13)
          throw new NativeError(`CSV.parse: unexpected character after a closing quote on line ${line}`);
      } else {
        let j = i;
        while (j < n) {
          const c = text.charCodeAt(j);
          if (c === d || c === 10 || c === 13) break;
          j++;
        }
        field = text.slice(i, j);
        i = j;
      }
      row.push(field);
      if (i >= n) {
        if (!(row.length === 1 && row[0] === '')) rows.push(row);
        break;
      }
      const c = text.charCodeAt(i);
      if (c === d) {
        i++;
        continue;
      }
      // End of record: \n, \r\n or \r.
      i += c === 13 && text.charCodeAt(i + 1) === 10 ? 2 : 1;
      line++;
      if (!(row.length === 1 && row[0] === '')) rows.push(row);
      row = [];
      if (i >= n) break;
    }
    if (opts.header === false) return rows;
    const header = rows.shift() || [];
    return rows.map((cells) => {
      const record = {};
      for (let k = 0; k < header.length; k++) record[header[k]] = cells[k] === undefined ? '' : cells[k];
      return record;
    });
  }

  function csvField(value, delimiter) {
    const text =
      value === null || value === undefined ? '' : typeof value === 'object' ? stringify(value) : String(value);
    return text.includes('"') || text.includes(delimiter) || text.includes('\n') || text.includes('\r')
      ? `"${text.replace(/"/g, '""')}"`
      : text;
  }

  function csvStringify(rows, options) {
    if (!isArray(rows)) throw new NativeTypeError('CSV.stringify(rows): rows must be an array of objects or arrays');
    const opts = options || {};
    const delimiter = opts.delimiter === undefined ? ',' : String(opts.delimiter);
    const lines = [];
    let columns = opts.columns;
    if (rows.length > 0 && !isArray(rows[0])) {
      columns = columns || Object.keys(rows[0]);
      lines.push(columns.map((c) => csvField(c, delimiter)).join(delimiter));
      for (const r of rows) lines.push(columns.map((c) => csvField(r[c], delimiter)).join(delimiter));
    } else {
      if (columns) lines.push(columns.map((c) => csvField(c, delimiter)).join(delimiter));
      for (const r of rows) lines.push(r.map((v) => csvField(v, delimiter)).join(delimiter));
    }
    return lines.join('\r\n') + (lines.length ? '\r\n' : '');
  }

  // ---- globals ------------------------------------------------------------------------------
  const globals = {
    input: setup.input === undefined ? undefined : parse(stringify(setup.input)),
    resume: setup.resume === undefined ? undefined : parse(stringify(setup.resume)),
    step,
    checkpoint,
    CSV: freeze({ parse: csvParse, stringify: csvStringify }),
    sleep,
    progress,
    console: freeze({
      log: log('log'),
      info: log('info'),
      warn: log('warn'),
      error: log('error'),
      debug: log('debug'),
    }),
    ApiError,
  };
  // An HTTP provider gets request(); an upstream MCP server gets one function per tool.
  for (const provider of setup.providers)
    globals[provider.name] = provider.tools ? toolClient(provider.name, provider.tools) : providerClient(provider.name);
  for (const [key, value] of Object.entries(globals)) {
    defineProperty(globalThis, key, { value, writable: false, enumerable: false, configurable: false });
  }
  globalThis.Date = DurableDate;
  Math.random = random;
  // WebAssembly memory is allocated outside the isolate's heap, so the memory limit would not hold it.
  delete globalThis.WebAssembly;
  delete globalThis.__dcmInstall;

  // ---- the host's controls ------------------------------------------------------------------
  function report() {
    const stuckStep = [...openSteps.values()][0];
    if (outcome === null && stuckStep !== undefined) {
      outcome = {
        kind: 'threw',
        error: {
          name: 'StepError',
          message: `step("${stuckStep}") was still waiting when the script went idle. A step must compute from values it already has: make API calls and sleep() outside step() and pass their results in.`,
        },
      };
    }
    if (outcome === null && issued.length === 0) {
      outcome = {
        kind: 'threw',
        error: {
          name: 'StuckScriptError',
          message:
            'The script is waiting on nothing: it awaits a promise that no API call, sleep() or step() will ever settle.',
        },
      };
    }
    // Step values are already JSON text: splice them in rather than parse and re-stringify them.
    const steps = newSteps.map((s) => `{"index":${s.index},"name":${stringify(s.name)},"value":${s.json}}`).join(',');
    const rest = stringify({ effects: issued, logs, droppedLogs, progress: progressState, outcome });
    const text = `{"steps":[${steps}],${rest.slice(1)}`;
    issued = [];
    newSteps = [];
    logs = [];
    droppedLogs = 0;
    return text;
  }

  return {
    start() {
      const main = globalThis.__dcmMain;
      delete globalThis.__dcmMain;
      if (typeof main !== 'function') {
        outcome = {
          kind: 'threw',
          error: {
            name: 'TypeError',
            message: `The script must be a function expression such as async () => { ... }; it evaluated to ${typeof main}.`,
          },
        };
        return;
      }
      NativePromise.resolve()
        .then(() => main())
        .then(
          (value) => {
            outcome = { kind: 'returned', value: parse(toJson(value, 'the script result')) };
          },
          (e) => {
            outcome = { kind: 'threw', error: errorInfo(e) };
          },
        );
    },
    deliver(json) {
      const delivery = parse(json);
      now = delivery.now;
      replaying = delivery.replaying;
      for (const step of delivery.steps) recordedSteps.set(step.index, step);
      deliver(delivery.outcomes);
    },
    report,
  };
};
