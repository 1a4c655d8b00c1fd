/**
 * What the host sends into the execute sandbox's runtime (sandbox/guest/runtime.js), as JSON text
 * with its long strings beside it (messageArguments, sandbox/guest/common.js): the setup when a
 * session opens, then one delivery per round. The runtime's answer to each is a RoundReport
 * (core/journal.ts). The host builds these messages with these types, and the runtime (plain
 * JavaScript, type-checked) reads them with the same types.
 */
import { z } from 'zod';
import { EffectOutcome, StepText } from './journal.ts';
import { KnownItems } from './ledger.ts';
import { SandboxLimits } from './limits.ts';
import { JsonValue as json } from './json-value.ts';

/** A provider as the sandbox sees it: an HTTP API (`name.request()`) or an upstream MCP server (its tools). */
export const SandboxProvider = z.object({
  name: z.string(),
  /** Set for an upstream MCP server: the names of its tools. */
  tools: z.array(z.string()).optional(),
});

/** A journaled step value as the guest takes it: JSON text, parsed only if the script asks for the step. */
export const GuestStep = StepText;

/** Installs the runtime in a fresh isolate, before the script is compiled. */
export const GuestSetup = z.object({
  input: json.optional(),
  /** The previous attempt's last checkpoint (a resumed job). */
  resume: json.optional(),
  providers: z.array(SandboxProvider),
  /** Seeds Math.random, so replays draw the same numbers. */
  seed: z.number().int().nonnegative(),
  /** Date.now() until the first delivery. */
  now: z.number(),
  /** The first round is replayed from the journal: console output is not captured again. */
  replaying: z.boolean(),
  /** A resumed job's new code: a step whose name differs from the journal's runs for real instead of failing. */
  lenient: z.boolean(),
  /** The journaled steps of the first round. */
  recordedSteps: z.array(GuestStep),
  /** A resumed attempt: what earlier attempts did with each() items, so done ones are skipped. */
  known: KnownItems,
  /** A dry run (job_resume preview): each() reports its plan and runs nothing. */
  preview: z.boolean(),
  /**
   * A step whose JSON is this long is large: the runtime collects its heap's garbage (the step's
   * value among it) before it parses the copy the script gets (the host's LARGE_ROUND_CHARS).
   */
  largeStepChars: z.number().int().positive(),
  /** The limits the runtime enforces itself; the host enforces the others. */
  limits: SandboxLimits.pick({ maxStepBytes: true, maxCheckpointBytes: true, maxLogBytes: true }),
});

/** The outcomes of the effects of the last report, in the order they were reported. */
export const GuestDelivery = z.object({
  outcomes: z.array(EffectOutcome),
  /** Date.now() from here on. */
  now: z.number(),
  /** The next round is replayed from the journal too. */
  replaying: z.boolean(),
  /** The journaled steps of the next round. */
  steps: z.array(GuestStep),
});

export type SandboxProvider = z.infer<typeof SandboxProvider>;
export type GuestStep = z.infer<typeof GuestStep>;
export type GuestSetup = z.infer<typeof GuestSetup>;
export type GuestDelivery = z.infer<typeof GuestDelivery>;
