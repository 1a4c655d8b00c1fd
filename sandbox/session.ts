/**
 * A script session: one isolate running one job's script, advanced round by round.
 *
 * The host never calls into the script directly. It calls the guest runtime's controls (start,
 * deliver, report) with JSON strings (long strings beside them: messageArguments); after each call
 * isolated-vm has drained the microtask queue, so the script is quiescent and the report lists
 * exactly the effects it now waits on.
 *
 * A session opened with a journal replays it first: each recorded round's effects must match what
 * the script asks for again, and their recorded outcomes are delivered instantly. Then it is live.
 */
import { createHash } from 'node:crypto';
import ivm from 'isolated-vm';
import type { z } from 'zod';
import { canonicalJson, effectLabel } from '../core/effects.ts';
import { productError, type CataloguedError } from '../core/errors.ts';
import { withGcExposed } from '../core/expose-gc.ts';
import type { GuestDelivery, GuestSetup, SandboxProvider } from '../core/guest-messages.ts';
import type { KnownItems } from '../core/ledger.ts';
import {
  RoundReport,
  type EffectOutcome,
  type EffectRequest,
  type RunnableJob,
  type ReplayRound,
  type StepText,
} from '../core/journal.ts';
import {
  compileUserFunction,
  createIsolate,
  loadGuestRuntime,
  SCRIPT_LIMIT_WORDING,
  sandboxFailure,
} from './isolate.ts';
import { messageArguments } from './guest/common.js';

/** A report bigger than this is refused: large data belongs in step values kept off history (blob store). */
const MAX_REPORT_BYTES = 256 * 1024 * 1024;

/**
 * A round that moves this many characters through the sandbox (what was delivered and the report)
 * leaves about as much garbage in the sandbox's heap and the worker's, which V8 would keep for many
 * rounds, tens of MB of the worker's RSS. After such a round both heaps get a full collection, tens
 * of milliseconds once per round that moved megabytes. Small rounds that moved as much together get
 * the sandbox's collection too: the strings handed in live outside its heap (isolated-vm hands each
 * over as an external string), so V8, seeing a small heap, kept them for the whole job (18 MB over
 * the 100,000-row import's thousand rounds of 100 rows).
 */
export const LARGE_ROUND_CHARS = 4 * 1024 * 1024;

/** The journal key of a request: what replay compares. */
export function effectKey(request: EffectRequest): string {
  return createHash('sha256').update(canonicalJson(request)).digest('hex');
}

export interface OpenSessionOptions {
  /** The job, its script and input resolved (blobs/claim-check.ts resolveJob). */
  job: RunnableJob;
  /** The configured providers; each becomes a global client in the sandbox. */
  providers: SandboxProvider[];
  /** Completed rounds to replay before going live, with outcomes and step values resolved (no blob references). */
  rounds: ReplayRound[];
  /** Time handed to the script once it is live. */
  now: number;
  /**
   * strict: the script must ask for exactly what the journal recorded (a normal replay).
   * adopt: a resumed job's new code; replay as long as it agrees, then go live (see Adopted).
   */
  mode?: 'strict' | 'adopt';
  /** Called after each replayed round, so a long replay can heartbeat. */
  onReplayedRound?: (round: number) => void;
  /** Sees each round's requests with the outcomes the script gets for them, replayed or live. */
  onDelivered?: (requests: readonly EffectRequest[], outcomes: readonly EffectOutcome[]) => void;
  /** A resumed attempt: what earlier attempts did with each() items (done ones are skipped). */
  known?: KnownItems;
  /**
   * A dry run of a resume: each() reports its plan (RoundReport.plans) and runs nothing, and an
   * adopt-mode replay stops at the first report with plans.
   */
  preview?: boolean;
}

/** How far adopt-mode replay went. */
export interface Adopted {
  /** Rounds of the journal the script agreed with, and which were delivered from it. */
  rounds: number;
  /** Where it stopped agreeing; null when it agreed with the whole journal. */
  divergence: string | null;
  /** For the live round's effects: the journal's outcome where it still agreed (same call, same position, succeeded). */
  prefilled: Array<EffectOutcome | undefined>;
}

interface Controls {
  start: ivm.Reference;
  deliver: ivm.Reference;
  report: ivm.Reference;
  stepJson: ivm.Reference;
  collect: ivm.Reference;
}

export class ScriptSession {
  readonly jobId: string;
  /** The job's attempt (1, then one more per job_resume): its ledger entries are kept per attempt. */
  readonly attempt: number;
  /** Rounds whose outcomes this session has received; the workflow checks it before delivering more. */
  roundsDelivered = 0;
  private readonly isolate: ivm.Isolate;
  private readonly controls: Controls;
  private readonly limits: RunnableJob['limits'];
  private ended = false;
  private readonly onDelivered: OpenSessionOptions['onDelivered'];
  /** The requests of the last report: what the next delivery answers. */
  private asked: readonly EffectRequest[] = [];
  /** Whether a round moved LARGE_ROUND_CHARS since takeLargeRound() last asked. */
  private largeRound = false;
  /** Characters moved through the sandbox since its last full collection (LARGE_ROUND_CHARS). */
  private movedSinceCollection = 0;

  private constructor(
    job: RunnableJob,
    isolate: ivm.Isolate,
    controls: Controls,
    onDelivered: OpenSessionOptions['onDelivered'],
  ) {
    this.jobId = job.jobId;
    this.attempt = job.attempt;
    this.isolate = isolate;
    this.controls = controls;
    this.limits = job.limits;
    this.onDelivered = onDelivered;
  }

  /** Creates the isolate, replays `rounds`, and returns the session with the first live report. */
  static async open(
    options: OpenSessionOptions,
  ): Promise<{ session: ScriptSession; report: RoundReport; adopted?: Adopted }> {
    const { job, rounds } = options;
    const adopt = options.mode === 'adopt';
    const isolate = createIsolate(job.limits.memoryMb);
    try {
      const context = contextWithGc(isolate);
      await loadGuestRuntime(isolate, context, 'runtime.js', job.limits.roundTimeoutMs);
      const { maxStepBytes, maxCheckpointBytes, maxLogBytes } = job.limits;
      const setup: GuestSetup = {
        input: job.input,
        resume: job.resume,
        providers: options.providers,
        seed: seedOf(job.jobId),
        now: rounds[0]?.now ?? options.now,
        replaying: rounds.length > 0,
        lenient: adopt,
        known: options.known ?? {},
        preview: options.preview ?? false,
        recordedSteps: rounds[0]?.steps ?? [],
        largeStepChars: LARGE_ROUND_CHARS,
        limits: { maxStepBytes, maxCheckpointBytes, maxLogBytes },
      };
      // References to the controls come from eval, then the global is removed so the script cannot
      // reach them. (A reference obtained with Reference.get() blocks Node's thread on apply, so the
      // time limit could never fire.)
      const setupMessage = messageArguments(setup);
      const setupParameters = setupMessage.map((_, i) => `$${i}`).join(', ');
      await context.evalClosure(`globalThis.__dcmControls = __dcmInstall(${setupParameters})`, setupMessage, {
        timeout: job.limits.roundTimeoutMs,
      });
      const control = (name: string) => context.eval(`__dcmControls.${name}`, { reference: true });
      const controls = {
        start: await control('start'),
        deliver: await control('deliver'),
        report: await control('report'),
        stepJson: await control('stepJson'),
        collect: await control('collect'),
      };
      await context.eval('delete globalThis.__dcmControls');
      const session = new ScriptSession(job, isolate, controls, options.onDelivered);
      const main = await compileUserFunction(isolate, job.code).then((s) =>
        s.run(context, { reference: true, timeout: job.limits.roundTimeoutMs }),
      );
      await context.global.set('__dcmMain', main.derefInto());
      let report = await session.run(
        () => controls.start.apply(undefined, [], { timeout: job.limits.roundTimeoutMs }),
        charsOf(setupMessage),
      );
      for (const [k, round] of rounds.entries()) {
        // A dry run stops where each() made its plan: from there on, the items would run live.
        if (options.preview && report.plans?.length)
          return { session, report, adopted: { rounds: k, divergence: eachStarts(report, k), prefilled: [] } };
        const divergence = replayDivergence(report, round, k, adopt);
        if (divergence && !adopt) return { session, report: session.fail(divergence) };
        if (divergence) {
          const prefilled = report.effects.map((request, i) => {
            const recorded = round.effects[i];
            return recorded && recorded.outcome.ok && recorded.key === effectKey(request)
              ? recorded.outcome
              : undefined;
          });
          return { session, report, adopted: { rounds: k, divergence: divergence.message, prefilled } };
        }
        const last = k === rounds.length - 1;
        const outcomes = round.effects.map((e) => e.outcome);
        report = await session.deliver(
          outcomes,
          last ? options.now : rounds[k + 1].now,
          !last,
          last ? undefined : rounds[k + 1].steps,
        );
        options.onReplayedRound?.(k);
      }
      if (options.preview && report.plans?.length)
        return {
          session,
          report,
          adopted: { rounds: rounds.length, divergence: eachStarts(report, rounds.length), prefilled: [] },
        };
      return {
        session,
        report,
        ...(adopt ? { adopted: { rounds: rounds.length, divergence: null, prefilled: [] } } : {}),
      };
    } catch (e) {
      if (!isolate.isDisposed) isolate.dispose();
      throw e;
    }
  }

  /** Hands the outcomes of the last round to the script and runs it to quiescence. */
  async deliver(
    outcomes: EffectOutcome[],
    now: number,
    replaying = false,
    nextSteps: StepText[] = [],
  ): Promise<RoundReport> {
    this.onDelivered?.(this.asked, outcomes);
    const delivery: GuestDelivery = { outcomes, now, replaying, steps: nextSteps };
    const message = messageArguments(delivery);
    const report = await this.run(
      () =>
        this.controls.deliver.apply(undefined, message, {
          arguments: { copy: true },
          timeout: this.limits.roundTimeoutMs,
        }),
      charsOf(message),
    );
    this.roundsDelivered++;
    return report;
  }

  get isEnded(): boolean {
    return this.ended;
  }

  /**
   * Whether a round moved LARGE_ROUND_CHARS since the last call: then the host has as much garbage
   * of its own, and collects it once it is done with the round (activities).
   */
  takeLargeRound(): boolean {
    const large = this.largeRound;
    this.largeRound = false;
    return large;
  }

  dispose(): void {
    this.ended = true;
    if (!this.isolate.isDisposed) this.isolate.dispose();
  }

  /**
   * Runs one control call that hands the sandbox `delivered` characters, then reads and validates
   * the report. Sandbox failures end the script.
   */
  private async run(call: () => Promise<unknown>, delivered: number): Promise<RoundReport> {
    const failed = (e: unknown) =>
      this.fail(
        sandboxFailure(e, this.isolate, {
          ...SCRIPT_LIMIT_WORDING,
          memoryMb: this.limits.memoryMb,
          timeoutMs: this.limits.roundTimeoutMs,
        }),
      );
    let text: unknown;
    try {
      await call();
      text = await this.controls.report.apply(undefined, [], { timeout: this.limits.roundTimeoutMs });
    } catch (e) {
      return failed(e);
    }
    let parsed: ReportText;
    try {
      parsed = parseReportText(text);
    } catch (e) {
      return this.fail(refusedReport(e));
    }
    // Each step's JSON crosses as a string of its own: escaped inside the report it would be copied
    // twice more (the report's text in both heaps), and parsed out of it on this side.
    let stepJson: unknown[];
    try {
      stepJson = [];
      for (let k = 0; k < parsed.steps.length; k++)
        stepJson.push(await this.controls.stepJson.apply(undefined, [k], { timeout: this.limits.roundTimeoutMs }));
    } catch (e) {
      return failed(e);
    }
    const moved =
      stepJson.reduce<number>((n, json) => n + (typeof json === 'string' ? json.length : 0), delivered) + parsed.length;
    const large = moved >= LARGE_ROUND_CHARS;
    if (large) this.largeRound = true;
    this.movedSinceCollection += moved;
    let report: RoundReport;
    try {
      report = RoundReport.parse({
        ...parsed.report,
        steps: parsed.steps.map((s, k) => ({ ...s, json: stepJson[k] })),
      });
    } catch (e) {
      return this.fail(refusedReport(e));
    }
    if (!report.outcome && report.effects.length > this.limits.maxEffectsPerRound) {
      return this.fail(
        productError(
          'EffectLimitError',
          `The script started ${report.effects.length} API calls/sleeps at once; the limit is ${this.limits.maxEffectsPerRound} per round. Process the work in batches (e.g. await chunks of Promise.all).`,
        ),
      );
    }
    if (report.outcome?.kind === 'returned') {
      const size = Buffer.byteLength(JSON.stringify(report.outcome.value));
      if (size > this.limits.maxResultBytes) {
        return this.fail(
          productError(
            'ResultTooLargeError',
            `The script returned ${size} bytes; the limit is ${this.limits.maxResultBytes}. Return a summary (counts, ids, a sample) instead of the full data.`,
          ),
        );
      }
    }
    if (report.outcome) this.dispose();
    else if (this.movedSinceCollection >= LARGE_ROUND_CHARS) this.collectGarbage();
    this.asked = report.effects;
    return report;
  }

  /**
   * A full collection of the sandbox's heap, on its own thread while the host goes on with the
   * round (the next delivery waits behind it). One that fails (the isolate was disposed meanwhile)
   * leaves only garbage that goes with the isolate.
   */
  private collectGarbage(): void {
    this.movedSinceCollection = 0;
    this.controls.collect.apply(undefined, [], { timeout: this.limits.roundTimeoutMs }).catch(() => undefined);
  }

  private fail(error: { name: string; message: string }): RoundReport {
    this.dispose();
    return { effects: [], steps: [], logs: [], droppedLogs: 0, progress: null, outcome: { kind: 'threw', error } };
  }
}

/** How many characters a control call's arguments hand the sandbox. */
function charsOf(message: string[]): number {
  return message.reduce((n, text) => n + text.length, 0);
}

/** A context whose global has V8's gc(), which the guest runtime takes for collect() and hides from the script. */
function contextWithGc(isolate: ivm.Isolate): ivm.Context {
  return withGcExposed(() => isolate.createContextSync());
}

/** A report as the guest wrote it: its steps without their JSON (see run()), and its length. */
interface ReportText {
  report: object;
  steps: object[];
  length: number;
}

function parseReportText(text: unknown): ReportText {
  if (typeof text !== 'string')
    throw new Error('sandbox runtime returned no report; the script may have replaced its globals');
  if (text.length > MAX_REPORT_BYTES) {
    throw new Error(
      `the script produced a round of ${text.length} bytes (limit ${MAX_REPORT_BYTES}); keep request bodies and step values smaller`,
    );
  }
  const report: unknown = JSON.parse(text);
  if (typeof report !== 'object' || report === null) throw new Error('it is not an object');
  const { steps } = report as { steps?: unknown };
  return { report, steps: Array.isArray(steps) ? (steps as object[]) : [], length: text.length };
}

/** The guest wrote the report: whatever is wrong with it is the script's doing and ends only its job. */
function refusedReport(e: unknown): CataloguedError {
  // A value that is not JSON says why (e.g. nested too deeply); any other mismatch is the report's shape.
  const reason =
    e instanceof Error && e.name === 'ZodError'
      ? ((e as z.ZodError).issues.find((issue) => issue.code === 'custom')?.message ?? 'it is not shaped like a report')
      : (e as Error).message;
  return productError(
    'SandboxReportError',
    `The sandbox's report of this round was refused (${reason}). The script may have replaced built-ins the runtime relies on (JSON, Object.prototype.toJSON, Array.prototype), or passed a value nested too deeply.`,
  );
}

/**
 * Why replaying `round` does not match what the script now asks for, or undefined when it does.
 * For a resumed job (adopt), a recorded call that failed does not match either: it runs again.
 */
function replayDivergence(
  report: RoundReport,
  round: ReplayRound,
  k: number,
  adopt: boolean,
): CataloguedError | undefined {
  const where = `round ${k + 1}`;
  if (report.outcome) {
    return productError(
      'ReplayDivergenceError',
      `replay diverged in ${where}: the script ended, but when the job first ran it went on to make ${round.effects.length} more call(s). The script must behave the same each time it runs.`,
    );
  }
  for (let i = 0; i < Math.max(round.effects.length, report.effects.length); i++) {
    const was = round.effects[i];
    const now = report.effects[i];
    if (!was || !now || was.key !== effectKey(now)) {
      const what = mismatch(was?.label, now && effectLabel(now));
      return productError(
        'ReplayDivergenceError',
        adopt
          ? `${where}, call ${i + 1}: ${what}; the new code runs live from here`
          : `replay diverged in ${where}, call ${i + 1}: ${what}. The script must make the same calls in the same order each time it runs (use input, step() and the journaled clock rather than outside state).`,
      );
    }
    if (adopt && !was.outcome.ok)
      return productError(
        'ReplayDivergenceError',
        `${where}, call ${i + 1} (${was.label}) failed in the previous attempt; it runs again`,
      );
  }
  if (report.steps.length > 0) {
    return productError(
      'ReplayDivergenceError',
      `replay diverged in ${where}: step("${report.steps[0].name}") was not part of the job when it first ran.`,
    );
  }
  return undefined;
}

/** Where a dry run found each() planning its items. */
function eachStarts(report: RoundReport, k: number): string {
  const names = [...new Set(report.plans?.map((p) => `each("${p.ledger}")`))].join(', ');
  return `round ${k + 1}: ${names} starts here; its items run live`;
}

/** How a call differs from the journal's call at its position: both named, and said plainly when they share a name. */
function mismatch(was: string | undefined, now: string | undefined): string {
  if (was && now && was === now)
    return `the journal has ${was} with another request (its body, query or arguments differ)`;
  if (!now) return `the journal has ${was} but the script now makes no call there`;
  if (!was) return `the script now also asks for ${now}, which the journal has not`;
  return `the journal has ${was} but the script now asks for ${now}`;
}

/** A per-job seed for Math.random, so replays draw the same numbers. */
function seedOf(jobId: string): number {
  let h = 2166136261;
  for (let i = 0; i < jobId.length; i++) h = Math.imul(h ^ jobId.charCodeAt(i), 16777619);
  return h >>> 0;
}
