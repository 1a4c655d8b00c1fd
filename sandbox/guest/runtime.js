// @ts-check
/**
 * The execute sandbox's runtime. Runs INSIDE the isolate, before the user's script: it defines the
 * globals a script sees (SCRIPT_GLOBALS of core/globals.ts, plus one client per provider) and the
 * controls the host drives with JSON text only: start() → report, deliver(json) → report (and
 * stepJson(k) for each step's JSON), and collect() for a garbage collection. No host object ever
 * enters the isolate; effects are requests the host reads out of the report after the isolate has
 * gone quiet (every pending promise waits on an effect).
 *
 * The builtins the runtime relies on are captured before the script runs, so a script that
 * overwrites JSON or Promise.prototype.then breaks only its own job, and the host validates every
 * report anyway.
 *
 * @import { GuestDelivery, GuestSetup, GuestStep, SandboxProvider } from '../../core/guest-messages.ts'
 * @import { EffectOutcome, EffectRequest, HttpEffect, HttpMethod, Progress, RoundReport, ScriptErrorInfo, ScriptOutcome } from '../../core/journal.ts'
 * @import { CataloguedError, ErrorName } from '../../core/errors.ts'
 * @import { SCRIPT_GLOBALS } from '../../core/globals.ts'
 */
import { describeThrown, errorInfo, parseJson as parse, parseMessage, scriptFrames, toJson } from './common.js';
import { createEach } from './each.js';

const { stringify } = JSON;
const NativePromise = Promise;
const NativeDate = Date;
const NativeError = Error;
const NativeTypeError = TypeError;
const { freeze, defineProperty, entries } = Object;
const { isArray } = Array;
const { construct, deleteProperty, get: getGlobal } = Reflect;
const { imul } = Math;

/** @typedef {{ resolve: (value: unknown) => void, reject: (error: Error) => void, callSite: Error }} InFlight */
/** @typedef {(typeof SCRIPT_GLOBALS)[number]} ScriptGlobal */

/** What an approver is shown of `approve()`'s details, at most. */
const MAX_APPROVAL_DETAILS_BYTES = 16 * 1024;

/**
 * Thrown into the script when an effect fails: an ApiError, RequestError or ToolError of the
 * catalogue (core/errors.ts, named by the host), with the response's status and body when there
 * was one. Its stack is the script's call that made the request.
 */
class ApiError extends NativeError {
  /** @param {Extract<EffectOutcome, { ok: false }>['error']} error */
  constructor(error) {
    super(error.message);
    this.name = error.name || 'ApiError';
    if (error.status !== undefined) this.status = error.status;
    if (error.body !== undefined) this.body = error.body;
  }
}

/**
 * Thrown into the script when a human denied an approval (`approve()`, or a call the approval
 * policy held), or nobody answered in time: `.by` (who, or "timeout") and `.note` (why, or null).
 */
class ApprovalDeniedError extends NativeError {
  /** @param {Extract<EffectOutcome, { ok: false }>['error']} error */
  constructor(error) {
    super(error.message);
    this.name = 'ApprovalDeniedError';
    const body = /** @type {{ by?: unknown, note?: unknown } | undefined} */ (error.body);
    this.by = typeof body?.by === 'string' ? body.by : null;
    this.note = typeof body?.note === 'string' ? body.note : null;
  }
}

/** The error a failed outcome becomes in the script. @param {Extract<EffectOutcome, { ok: false }>['error']} error */
const outcomeError = (error) =>
  error.name === 'ApprovalDeniedError' ? new ApprovalDeniedError(error) : new ApiError(error);

/**
 * An error the runtime raises for the script, its stack in script coordinates: the script's frames
 * of `site` (where the script called into the runtime), none of the runtime's own.
 * @template {Error} E
 * @param {E} error
 * @param {Error} [site]
 * @returns {E}
 */
function forScript(error, site = error) {
  let frames = /** @type {string[]} */ ([]);
  try {
    frames = scriptFrames(String(site.stack));
  } catch {
    // The script's own Error.prepareStackTrace failed: the error goes without frames.
  }
  const header = error.message ? `${error.name}: ${error.message}` : error.name;
  try {
    defineProperty(error, 'stack', {
      value: [header, ...frames].join('\n'),
      writable: true,
      enumerable: false,
      configurable: true,
    });
  } catch {
    // An error the script froze keeps the stack it has.
  }
  return error;
}

/** @param {string} message */
const typeError = (message) => forScript(new NativeTypeError(message));

/**
 * How a call of the script fails when the runtime refuses it: a rejected promise, with an Error in
 * script coordinates.
 * @param {unknown} e
 */
const refused = (e) =>
  NativePromise.reject(e instanceof NativeError ? forScript(e) : new NativeError(describeThrown(e)));

/**
 * An error of the catalogue (core/errors.ts) thrown into the script.
 * @param {ErrorName} name
 * @param {string} message
 */
function catalogued(name, message) {
  const error = new NativeError(message);
  error.name = name;
  return forScript(error);
}

/**
 * Installs the runtime's globals from the host's setup and returns the host's controls.
 * @param {[json: string, pathsJson?: string, ...strings: string[]]} setupMessage a GuestSetup (see parseMessage)
 */
function install(...setupMessage) {
  const setup = /** @type {GuestSetup} */ (parseMessage(...setupMessage));
  const { limits } = setup;

  // ---- state -------------------------------------------------------------------------------
  let now = setup.now;
  let replaying = setup.replaying;
  /** @type {EffectRequest[]} requests since the last report */
  let issued = [];
  /** @type {InFlight[]} the effects of the last report, in order */
  let inFlight = [];
  /** @type {GuestStep[]} */
  let newSteps = [];
  /** @type {string[]} the JSON of the last report's steps, which the host takes with stepJson() */
  let reportedSteps = [];
  let stepCount = 0;
  /** @type {Map<number, string>} index → name of steps whose body has not settled yet */
  const openSteps = new Map();
  let recordedSteps = new Map(setup.recordedSteps.map((s) => [s.index, s]));
  /** @type {string[]} */
  let logs = [];
  let logBytes = 0;
  let droppedLogs = 0;
  /** @type {Progress | null} */
  let progressState = null;
  /** @type {ScriptOutcome | null} */
  let outcome = null;
  const ledger = createEach({
    known: setup.known,
    preview: setup.preview,
    now: () => now,
    typeError,
    tooManyFailures: (message, callSite) => {
      const error = new NativeError(message);
      error.name = /** @type {ErrorName} */ ('TooManyFailuresError');
      return forScript(error, callSite);
    },
  });

  // ---- effects ------------------------------------------------------------------------------
  /** @param {EffectRequest} request */
  function issue(request) {
    // A write of an each() with reconcile: if its worker is lost after sending it, fail it as
    // uncertain instead of sending it again, so reconcile can look first.
    if (ledger.reconciling() && (request.kind === 'tool' || (request.kind === 'http' && isWrite(request.method))))
      request.onUncertain = 'fail';
    issued.push(request);
    // Where the script made the call: an error delivered for this effect points there.
    const callSite = new NativeError();
    return new NativePromise((resolve, reject) => inFlight.push({ resolve, reject, callSite }));
  }

  /** @param {EffectOutcome[]} outcomes */
  function deliver(outcomes) {
    const settles = inFlight;
    inFlight = [];
    if (outcomes.length !== settles.length)
      throw new NativeError(`runtime: ${outcomes.length} outcomes for ${settles.length} effects`);
    for (let i = 0; i < outcomes.length; i++) {
      const o = outcomes[i];
      const settle = settles[i];
      if (o.ok) settle.resolve(o.value);
      else settle.reject(forScript(outcomeError(o.error), settle.callSite));
    }
  }

  /** @type {readonly HttpMethod[]} */
  const METHODS = ['GET', 'POST', 'PUT', 'PATCH', 'DELETE', 'HEAD'];
  /** @param {string} method @returns {method is HttpMethod} */
  const isMethod = (method) => METHODS.some((m) => m === method);
  /** @param {HttpMethod} method */
  const isWrite = (method) => method !== 'GET' && method !== 'HEAD';

  /**
   * `name.request({ method, path, query, body })` of an HTTP provider.
   * @param {string} provider
   */
  function providerClient(provider) {
    return freeze({
      /** @param {{ method?: unknown, path?: unknown, query?: unknown, body?: unknown } | null} options */
      request(options) {
        try {
          if (options === null || typeof options !== 'object')
            throw new NativeTypeError(`${provider}.request() takes an object: { method, path, query, body }`);
          const method = String(options.method || 'GET').toUpperCase();
          if (!isMethod(method))
            throw new NativeTypeError(
              `${provider}.request(): method must be one of ${METHODS.join(', ')}; got ${String(options.method)}`,
            );
          const path = options.path;
          if (typeof path !== 'string' || !path.startsWith('/') || path.startsWith('//')) {
            throw new NativeTypeError(
              `${provider}.request(): path must be a string starting with "/" relative to the provider's base URL; got ${stringify(path)}`,
            );
          }
          /** @type {HttpEffect} */
          const request = { kind: 'http', provider, method, path };
          if (options.query !== undefined)
            request.query = /** @type {HttpEffect['query']} */ (
              parse(toJson(options.query, `${provider}.request() query`))
            );
          if (options.body !== undefined) request.body = parse(toJson(options.body, `${provider}.request() body`));
          return issue(request);
        } catch (e) {
          return refused(e);
        }
      },
    });
  }

  /**
   * An upstream MCP server: one function per tool.
   * @param {string} provider
   * @param {string[]} tools
   */
  function toolClient(provider, tools) {
    /** @type {Record<string, (args?: unknown) => Promise<unknown>>} */
    const client = {};
    for (const tool of tools) {
      client[tool] = (args) => {
        try {
          /** @type {EffectRequest} */
          const request = { kind: 'tool', provider, tool };
          if (args !== undefined) request.args = parse(toJson(args, `${provider}.${tool}() arguments`));
          return issue(request);
        } catch (e) {
          return refused(e);
        }
      };
    }
    return freeze(client);
  }

  /** @param {SandboxProvider} provider */
  const clientOf = (provider) =>
    provider.tools ? toolClient(provider.name, provider.tools) : providerClient(provider.name);

  /** @param {unknown} state */
  function checkpoint(state) {
    try {
      const text = toJson(state, 'the checkpoint state');
      if (text.length > limits.maxCheckpointBytes) {
        throw new NativeError(
          `checkpoint(state): the state is ${text.length} bytes; the limit is ${limits.maxCheckpointBytes} (limits.maxCheckpointBytes). Keep a checkpoint compact (counters, cursors, ids) and save bulk data with step().`,
        );
      }
      return issue({ kind: 'checkpoint', state: parse(text) });
    } catch (e) {
      return refused(e);
    }
  }

  /** @param {unknown} ms */
  function sleep(ms) {
    if (typeof ms !== 'number' || !(ms >= 0) || ms > 366 * 24 * 3600 * 1000) {
      return NativePromise.reject(
        typeError(`sleep(ms): ms must be a number of milliseconds between 0 and one year; got ${String(ms)}`),
      );
    }
    return issue({ kind: 'sleep', ms: Math.round(ms) });
  }

  /**
   * `approve(question, details, { timeoutMs })`: the job waits (durably, holding no sandbox) until a
   * human answers; resolves to `{ approved: true, by, note }` or rejects with ApprovalDeniedError.
   * @param {unknown} question
   * @param {unknown} [details]
   * @param {{ timeoutMs?: unknown }} [options]
   */
  function approve(question, details, options) {
    try {
      if (typeof question !== 'string' || question.trim() === '' || question.length > 2000)
        throw new NativeTypeError(
          'approve(question, details): question must be a non-empty string of at most 2,000 characters',
        );
      /** @type {EffectRequest} */
      const request = { kind: 'approval', question };
      if (details !== undefined) {
        const text = toJson(details, 'the details of approve()');
        if (text.length > MAX_APPROVAL_DETAILS_BYTES)
          throw new NativeError(
            `approve(question, details): details are ${text.length} bytes; at most ${MAX_APPROVAL_DETAILS_BYTES} are shown to the approver. Pass a summary (counts, a sample).`,
          );
        request.details = parse(text);
      }
      const timeoutMs = options?.timeoutMs;
      if (timeoutMs !== undefined) {
        if (typeof timeoutMs !== 'number' || !(timeoutMs >= 1) || timeoutMs > 366 * 24 * 3600 * 1000)
          throw new NativeTypeError(
            `approve(question, details, { timeoutMs }): timeoutMs must be a number of milliseconds between 1 and one year; got ${String(timeoutMs)}`,
          );
        request.timeoutMs = Math.round(timeoutMs);
      }
      return issue(request);
    } catch (e) {
      return refused(e);
    }
  }

  /**
   * @param {unknown} name
   * @param {unknown} fn
   */
  function step(name, fn) {
    if (typeof name !== 'string' || name === '')
      return NativePromise.reject(typeError('step(name, fn): name must be a non-empty string'));
    if (typeof fn !== 'function') return NativePromise.reject(typeError(`step("${name}", fn): fn must be a function`));
    const index = stepCount++;
    const recorded = recordedSteps.get(index);
    if (recorded && recorded.name !== name && setup.lenient) {
      // A resumed job's new code went another way: from here on, steps run for real.
      recordedSteps = new Map();
    } else if (recorded) {
      if (recorded.name !== name) {
        return NativePromise.reject(
          catalogued(
            'ReplayDivergenceError',
            `replay diverged: step #${index} was "${recorded.name}" when the job first ran, but the script now calls step("${name}"). The script must make the same calls in the same order each time it runs.`,
          ),
        );
      }
      return NativePromise.resolve(parse(recorded.json));
    }
    // Where the script called step(): a value that cannot be saved is reported there.
    const callSite = new NativeError();
    const body = /** @type {() => unknown} */ (fn);
    openSteps.set(index, name);
    return NativePromise.resolve()
      .then(() => body())
      .then(
        (value) => {
          openSteps.delete(index);
          let text;
          try {
            text = toJson(value, `the value of step("${name}")`);
          } catch (e) {
            throw e instanceof NativeError ? forScript(e, callSite) : e;
          }
          if (text.length > limits.maxStepBytes) {
            throw forScript(
              new NativeError(
                `the value of step("${name}") is ${text.length} bytes; the limit is ${limits.maxStepBytes} (limits.maxStepBytes). Save less, or split it into several steps.`,
              ),
              callSite,
            );
          }
          newSteps.push({ index, name, json: text });
          // The script gets a copy parsed from the JSON (what a replay gets). A large value goes
          // first, so it and its copy do not fill the heap together (the 100,000-row import's parsed
          // sheet).
          value = undefined;
          if (text.length >= setup.largeStepChars) collectGarbage?.({ type: 'major', execution: 'sync' });
          return parse(text);
        },
        (e) => {
          openSteps.delete(index);
          throw e;
        },
      );
  }

  // ---- observability ------------------------------------------------------------------------
  /** @param {unknown} a */
  const formatArg = (a) => (a instanceof NativeError ? String(a.stack || a) : describeThrown(a));

  /** @param {string} level */
  function log(level) {
    return (/** @type {unknown[]} */ ...args) => {
      if (replaying) return; // these lines were captured when the round first ran
      const line = (level === 'log' ? '' : `[${level}] `) + args.map(formatArg).join(' ');
      if (logBytes + line.length > limits.maxLogBytes) {
        droppedLogs++;
        return;
      }
      logBytes += line.length;
      logs.push(line);
    };
  }

  /**
   * @param {unknown} done
   * @param {unknown} total
   * @param {unknown} message
   */
  function progress(done, total, message) {
    if (typeof done !== 'number' || !Number.isFinite(done))
      throw typeError(`progress(done, total, message): done must be a number; got ${String(done)}`);
    progressState = {
      done,
      total: typeof total === 'number' && Number.isFinite(total) ? total : null,
      message: message === undefined || message === null ? null : String(message).slice(0, 500),
    };
  }

  // ---- determinism: clock and randomness come from the journal, not the machine ----------------
  /** @param {unknown[]} args */
  function DurableDate(...args) {
    if (!new.target) return new NativeDate(now).toString();
    return args.length === 0 ? new NativeDate(now) : /** @type {Date} */ (construct(NativeDate, args));
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
    t = imul(t ^ (t >>> 15), t | 1);
    t ^= t + imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  }

  // ---- globals ------------------------------------------------------------------------------
  /** @type {Record<ScriptGlobal, unknown>} exactly SCRIPT_GLOBALS: a name missing or extra is a type error */
  const globals = {
    input: setup.input,
    resume: setup.resume,
    step,
    checkpoint,
    each: ledger.each,
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
    approve,
    ApprovalDeniedError,
  };
  const define = (/** @type {string} */ key, /** @type {unknown} */ value) =>
    defineProperty(globalThis, key, { value, writable: false, enumerable: false, configurable: false });
  for (const [key, value] of entries(globals)) define(key, value);
  // An HTTP provider gets request(); an upstream MCP server gets one function per tool.
  for (const provider of setup.providers) define(provider.name, clientOf(provider));
  defineProperty(globalThis, 'Date', { value: DurableDate });
  Math.random = random;
  // WebAssembly memory is allocated outside the isolate's heap, so the memory limit would not hold it.
  deleteProperty(globalThis, 'WebAssembly');
  deleteProperty(globalThis, '__dcmInstall');
  // The context comes with V8's gc() for the host's collect() (sandbox/session.ts), not for the
  // script: V8 defines it as a property that cannot be deleted, so it is overwritten.
  /** @type {unknown} */
  const gc = getGlobal(globalThis, 'gc');
  const collectGarbage = typeof gc === 'function' ? /** @type {(options: object) => void} */ (gc) : undefined;
  if (collectGarbage) defineProperty(globalThis, 'gc', { value: undefined, writable: false });

  // ---- the host's controls ------------------------------------------------------------------
  function report() {
    progressState = ledger.takeProgress() ?? progressState;
    const stuckStep = [...openSteps.values()][0];
    if (outcome === null && stuckStep !== undefined) {
      /** @type {CataloguedError} */
      const error = {
        name: 'StepError',
        message: `step("${stuckStep}") was still waiting when the script went idle. A step must compute from values it already has: make API calls and sleep() outside step() and pass their results in.`,
      };
      outcome = { kind: 'threw', error };
    }
    // A dry run's each() waits for good where it planned its items: that is where the preview ends, not a stuck script.
    const plans = setup.preview ? ledger.takePlans() : [];
    if (outcome === null && issued.length === 0 && plans.length === 0) {
      /** @type {CataloguedError} */
      const error = {
        name: 'StuckScriptError',
        message:
          'The script is waiting on nothing: it awaits a promise that no API call, sleep() or step() will ever settle.',
      };
      outcome = { kind: 'threw', error };
    }
    // Step values stay JSON text, and each crosses to the host as a string of its own (stepJson),
    // not escaped inside the report: the host stores a large one as it is.
    reportedSteps = newSteps.map((step) => step.json);
    const steps = newSteps.map(({ index, name }) => ({ index, name, json: '' }));
    /** @type {RoundReport} */
    const report = { effects: issued, steps, logs, droppedLogs, progress: progressState, outcome };
    const entries = ledger.takeReport();
    if (entries) report.ledger = entries;
    if (setup.preview) report.plans = plans;
    const text = stringify(report);
    issued = [];
    newSteps = [];
    logs = [];
    droppedLogs = 0;
    return text;
  }

  /** @param {unknown} e @returns {ScriptErrorInfo} */
  const thrown = (e) =>
    e instanceof NativeError
      ? errorInfo(e)
      : { name: 'Error', message: `the script threw a non-Error value: ${describeThrown(e)}` };

  return {
    start() {
      /** @type {unknown} */
      const main = getGlobal(globalThis, '__dcmMain');
      deleteProperty(globalThis, '__dcmMain');
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
      const script = /** @type {() => unknown} */ (main);
      NativePromise.resolve()
        .then(() => script())
        .then(
          (value) => {
            outcome = { kind: 'returned', value: parse(toJson(value, 'the script result')) };
          },
          (e) => {
            outcome = { kind: 'threw', error: thrown(e) };
          },
        );
    },
    /** @param {[json: string, pathsJson?: string, ...strings: string[]]} message a GuestDelivery (see parseMessage) */
    deliver(...message) {
      const delivery = /** @type {GuestDelivery} */ (parseMessage(...message));
      now = delivery.now;
      replaying = delivery.replaying;
      for (const step of delivery.steps) recordedSteps.set(step.index, step);
      deliver(delivery.outcomes);
    },
    report,
    /** @param {number} k the JSON of the last report's k-th step (its `json` there is empty) */
    stepJson(k) {
      return reportedSteps[k];
    },
    /** A full collection of the isolate's heap, which the host asks for after a round that moved large values. */
    collect() {
      collectGarbage?.({ type: 'major', execution: 'sync' });
    },
  };
}

// ---- CSV (RFC 4180), so scripts do not hand-roll one -------------------------------------------

/**
 * @param {unknown} text
 * @param {{ header?: boolean, delimiter?: unknown }} [options]
 */
function csvParse(text, options) {
  if (typeof text !== 'string') throw typeError(`CSV.parse(text): text must be a string; got ${typeof text}`);
  const opts = options || {};
  const delimiter = opts.delimiter === undefined ? ',' : String(opts.delimiter);
  if (delimiter.length !== 1 || delimiter === '"' || delimiter === '\n' || delimiter === '\r')
    throw typeError('CSV.parse: delimiter must be one character other than a quote or newline');
  /** @type {string[][]} */
  const rows = [];
  /** @type {string[]} */
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
        if (q === -1)
          throw forScript(new NativeError(`CSV.parse: unterminated quoted field starting on line ${start}`));
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
        throw forScript(new NativeError(`CSV.parse: unexpected character after a closing quote on line ${line}`));
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
    /** @type {Record<string, string>} */
    const record = {};
    for (let k = 0; k < header.length; k++) record[header[k]] = cells[k] === undefined ? '' : cells[k];
    return record;
  });
}

/**
 * @param {unknown} value
 * @param {string} delimiter
 */
function csvField(value, delimiter) {
  const text =
    value === null || value === undefined ? '' : typeof value === 'object' ? stringify(value) : String(value);
  return text.includes('"') || text.includes(delimiter) || text.includes('\n') || text.includes('\r')
    ? `"${text.replace(/"/g, '""')}"`
    : text;
}

/**
 * @param {unknown} rows
 * @param {{ columns?: string[], delimiter?: unknown }} [options]
 */
function csvStringify(rows, options) {
  if (!isArray(rows)) throw typeError('CSV.stringify(rows): rows must be an array of objects or arrays');
  const opts = options || {};
  const delimiter = opts.delimiter === undefined ? ',' : String(opts.delimiter);
  /** @type {string[]} */
  const lines = [];
  const columns = opts.columns;
  if (rows.length > 0 && !isArray(rows[0])) {
    const records = /** @type {Record<string, unknown>[]} */ (rows);
    const keys = columns || Object.keys(records[0]);
    lines.push(keys.map((c) => csvField(c, delimiter)).join(delimiter));
    for (const r of records) lines.push(keys.map((c) => csvField(r[c], delimiter)).join(delimiter));
  } else {
    if (columns) lines.push(columns.map((c) => csvField(c, delimiter)).join(delimiter));
    for (const r of /** @type {unknown[][]} */ (rows)) lines.push(r.map((v) => csvField(v, delimiter)).join(delimiter));
  }
  return lines.join('\r\n') + (lines.length ? '\r\n' : '');
}

// The host calls this once (see ScriptSession.open), then it is gone.
defineProperty(globalThis, '__dcmInstall', { value: install, writable: true, configurable: true });
