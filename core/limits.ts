/** What one job may use: the sandbox's limits, fixed when the job starts (`limits` in the config). */
import { z } from 'zod';
import { configObject } from './config-object.ts';

export const SandboxLimits = configObject({
  maxScriptBytes: z
    .number()
    .int()
    .positive()
    .default(256 * 1024),
  /** The `input` of execute, as JSON; larger inputs are refused before any job starts. */
  maxInputBytes: z
    .number()
    .int()
    .positive()
    .default(64 * 1024 * 1024),
  maxStepBytes: z
    .number()
    .int()
    .positive()
    .default(64 * 1024 * 1024),
  maxCheckpointBytes: z
    .number()
    .int()
    .positive()
    .default(256 * 1024),
  memoryMb: z.number().int().min(8).default(256),
  roundTimeoutMs: z.number().int().positive().default(10_000),
  maxEffectsPerRound: z.number().int().positive().max(1_000).default(500),
  maxEffectsPerJob: z.number().int().positive().default(100_000),
  maxLogBytes: z
    .number()
    .int()
    .positive()
    .default(64 * 1024),
  maxResultBytes: z
    .number()
    .int()
    .positive()
    .default(1024 * 1024),
  /** After a cancel, how long calls already sent may take to land, so their outcomes are journaled and never sent again. */
  cancelGraceMs: z.number().int().nonnegative().default(10_000),
  /** Wall time of one attempt of a job, sleeps and waits included (7 days). */
  maxJobSeconds: z
    .number()
    .int()
    .positive()
    .default(7 * 24 * 3600),
});

export type SandboxLimits = z.infer<typeof SandboxLimits>;
