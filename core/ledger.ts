/**
 * The import ledger's vocabulary (issue 15): what `each(items, fn, options)` records about every
 * item it settles, how the sandbox reports it each round, and what a resumed attempt is told about
 * the items of earlier attempts.
 *
 * Entries leave the sandbox in the round report and are kept in blob-store segments (ledger/);
 * workflow history sees only the counts and the first few failures.
 */
import { z } from 'zod';
import { JsonValue as json } from './json-value.ts';

/** The ledger an each() writes to when the script names none (`options.name`). */
export const DEFAULT_LEDGER = 'items';

/** How many failures a job's summary carries (the job tool's status); the rest are paged from the ledger. */
export const FIRST_FAILURES = 5;

/** A value fn returns is kept in the entry up to this many bytes of JSON (ids, counts); a larger one is not kept. */
export const MAX_ENTRY_VALUE_BYTES = 256;
/** A failed or uncertain item is kept in its entry up to this many bytes of JSON, so it can be fixed and fed back. */
export const MAX_ENTRY_ITEM_BYTES = 2048;
/** An error's message is kept up to this many characters. */
export const MAX_ENTRY_MESSAGE_CHARS = 500;
/** Keys longer than this are refused: a key identifies an item, it is not its data. */
export const MAX_KEY_CHARS = 500;

/**
 * done: fn resolved (or reconcile found the item had already landed); failed: fn threw or rejected;
 * uncertain: a call of the item may have been applied (its worker was lost after sending it) and
 * nothing settled whether it was. Items skipped because an earlier attempt did them are counted,
 * not written again: the earlier attempt's entry stays their record.
 */
export const LedgerStatus = z.enum(['done', 'failed', 'uncertain']);

export const LedgerEntry = z.object({
  /** The each()'s ledger name (`options.name`, default "items"). */
  ledger: z.string(),
  key: z.string(),
  /** The item's position in the items each() was given. */
  index: z.number().int().nonnegative(),
  status: LedgerStatus,
  /** What fn returned (or reconcile, for an item found landed), when small; `valueBytes` instead when not kept. */
  value: json.optional(),
  valueBytes: z.number().int().optional(),
  error: z.object({ name: z.string(), message: z.string(), status: z.number().int().optional() }).optional(),
  /** A failed or uncertain item itself, when small: what an operator fixes and feeds back as the corrected input. */
  item: json.optional(),
  /** The item's call was uncertain and reconcile ran: it had landed, or it had not and the item ran again. */
  reconciled: z.enum(['landed', 'retried']).optional(),
});

/** Per ledger name, the items each() was given and how they ended so far, in this attempt. */
export const LedgerCounts = z.object({
  total: z.number().int().nonnegative(),
  done: z.number().int().nonnegative(),
  failed: z.number().int().nonnegative(),
  uncertain: z.number().int().nonnegative(),
  /** Done in an earlier attempt: not run again. */
  skipped: z.number().int().nonnegative(),
});

/** What a round report carries about the ledger: the entries settled since the last report, and the counts now. */
export const LedgerReport = z.object({
  entries: z.array(LedgerEntry),
  counts: z.record(z.string(), LedgerCounts),
});

/**
 * What a resumed attempt knows about earlier attempts, per ledger name, by each key's latest entry:
 * keys done (each() skips them without calling anything), keys left uncertain (reconcile runs
 * first) and keys that failed (they run again; a dry run counts them as retried).
 */
export const KnownItems = z.record(
  z.string(),
  z.object({ done: z.array(z.string()), uncertain: z.array(z.string()), failed: z.array(z.string()) }),
);

/** What a round's activity tells the workflow about the ledger: counts, and failures while fewer than FIRST_FAILURES are known. */
export const LedgerSummary = z.object({
  counts: z.record(z.string(), LedgerCounts),
  firstFailures: z.array(LedgerEntry),
});

/**
 * An each()'s plan as a dry-run preview sees it: how many items it will skip (done before), retry
 * (failed or uncertain before; `reconcile` of them go through options.reconcile first) and run for the
 * first time.
 */
export const EachPlan = z.object({
  ledger: z.string(),
  total: z.number().int().nonnegative(),
  skip: z.number().int().nonnegative(),
  retry: z.number().int().nonnegative(),
  reconcile: z.number().int().nonnegative(),
  new: z.number().int().nonnegative(),
});

export type LedgerStatus = z.infer<typeof LedgerStatus>;
export type LedgerEntry = z.infer<typeof LedgerEntry>;
export type LedgerCounts = z.infer<typeof LedgerCounts>;
export type LedgerReport = z.infer<typeof LedgerReport>;
export type KnownItems = z.infer<typeof KnownItems>;
export type LedgerSummary = z.infer<typeof LedgerSummary>;
export type EachPlan = z.infer<typeof EachPlan>;
