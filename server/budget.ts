/**
 * Keeps tool answers within a context window: values are measured in real tokens (o200k_base)
 * and cut to a budget, with a marker saying how much was cut and how to ask for less. A job result
 * over the budget is stored in the blob store and answered as a reference, a preview and a page
 * count; `job({ job_id, page })` reads it page by page.
 */
import { createRequire } from 'node:module';
import { Tiktoken, type TiktokenBPE } from 'js-tiktoken/lite';
import { type BlobStore, contentAddress } from '../blobs/store.ts';
import { ProductError } from '../core/errors.ts';
import { JobStateError, type JobView } from '../jobs/service.ts';

/** Above this many characters the total in a marker is extrapolated from a sample (counting 10 MB takes seconds). */
const EXACT_COUNT_MAX_CHARS = 2_000_000;
const SAMPLE_CHARS = 500_000;
/** Room left for the marker and the answer's other fields. */
const MARKER_TOKENS = 60;
const PAGE_OVERHEAD_TOKENS = 150;
/** Strings are never cut shorter than this: below it a value says nothing. */
const MIN_STRING_CHARS = 16;
/** Containers nested deeper than this are cut whole (and the walk stays far from the stack limit). */
const MAX_DEPTH = 64;
/** Pages are packed from chunks of this many characters. */
const PAGE_CHUNK_CHARS = 200;
/** Page starts are remembered for this many results: an agent reads pages one call after another. */
const PAGED_RESULTS_KEPT = 16;

/**
 * o200k_base, loaded and built on first use: its ranks and tables take tens of MB, which a server
 * that has not answered anything yet does not need. (Only this encoding: js-tiktoken/lite.)
 */
let encoder: Tiktoken | undefined;

function o200k(): Tiktoken {
  encoder ??= new Tiktoken(createRequire(import.meta.url)('js-tiktoken/ranks/o200k_base') as TiktokenBPE);
  return encoder;
}

/**
 * Runs the tokenizer takes as one piece (letters, punctuation or whitespace). Its byte-pair merging
 * is quadratic in a piece's length (16,000 letters take 17 s), so such runs are counted in slices,
 * which can only over-count, by a token or so per slice.
 */
const LONG_PIECE = /[\p{L}\p{M}]{64,}|[^\s\p{L}\p{N}]{64,}|\s{64,}/gu;
const PIECE_SLICE_CHARS = 32;

/** Tokens of `text` in o200k_base; special-token text such as <|endoftext|> counts as plain text. */
export function countTokens(text: string): number {
  const encode = (part: string) => o200k().encode(part, [], []).length;
  let count = 0;
  let last = 0;
  for (const run of text.matchAll(LONG_PIECE)) {
    count += encode(text.slice(last, run.index));
    for (let i = 0; i < run[0].length; i += PIECE_SLICE_CHARS) count += encode(run[0].slice(i, i + PIECE_SLICE_CHARS));
    last = run.index + run[0].length;
  }
  return count + encode(text.slice(last));
}

/** The token count of a large text, estimated from its start when counting it all would take seconds. */
function totalTokens(text: string): { tokens: number; approximate: boolean } {
  if (text.length <= EXACT_COUNT_MAX_CHARS) return { tokens: countTokens(text), approximate: false };
  return {
    tokens: Math.round((countTokens(text.slice(0, SAMPLE_CHARS)) * text.length) / SAMPLE_CHARS),
    approximate: true,
  };
}

/** The JSON an answer carries (compact, as the tools send it). */
export function jsonText(value: unknown): string {
  return JSON.stringify(value) ?? 'null';
}

export interface Fitted {
  value: unknown;
  /** Present when something was cut: how much, and `hint` on how to ask for less. */
  cut?: string;
}

/**
 * `value` if its JSON fits in `maxTokens`, else a shortened copy that is still plain JSON: arrays
 * and objects keep their first entries and end with a marker entry (`"…[120 more items]"`), long
 * strings end in `…[n more chars]`; as a last resort the JSON text itself is cut.
 */
export function fitJson(value: unknown, maxTokens: number, hint: string, text = jsonText(value)): Fitted {
  const target = Math.max(1, maxTokens - MARKER_TOKENS);
  // A token is at least one byte, and a UTF-16 code unit at most three.
  if (text.length * 3 <= target) return { value };
  const total = totalTokens(text);
  if (!total.approximate && total.tokens <= maxTokens) return { value };
  const fits = (candidate: unknown) => countTokens(jsonText(candidate)) <= target;
  const { widest, longest } = measure(value);
  let fitted: unknown;
  const items = largestFitting(1, widest, (n) => fits(shrink(value, n, Infinity)));
  if (items !== undefined) fitted = shrink(value, items, Infinity);
  else {
    const chars = largestFitting(MIN_STRING_CHARS, longest, (n) => fits(shrink(value, 1, n)));
    if (chars !== undefined) fitted = shrink(value, 1, chars);
    else {
      const length =
        largestFitting(0, text.length, (n) => countTokens(jsonText(text.slice(0, n) + '…')) <= target) ?? 0;
      fitted = text.slice(0, length) + '…';
    }
  }
  const omitted = total.tokens - countTokens(jsonText(fitted));
  const amount = `${total.approximate ? '~' : ''}${format(Math.max(omitted, 1))} of ${total.approximate ? '~' : ''}${format(total.tokens)}`;
  return { value: fitted, cut: `…[cut: ${amount} tokens omitted; ${hint}]` };
}

/** Copy of `value` with at most `items` entries per array/object and at most `chars` characters per string. */
function shrink(value: unknown, items: number, chars: number, depth = 0): unknown {
  if (typeof value === 'string')
    return value.length > chars ? `${value.slice(0, chars)}…[${value.length - chars} more chars]` : value;
  if (value === null || typeof value !== 'object') return value;
  if (depth >= MAX_DEPTH) return '…[nested too deep]';
  if (Array.isArray(value)) {
    const kept = value.slice(0, items).map((v) => shrink(v, items, chars, depth + 1));
    if (value.length > items) kept.push(`…[${value.length - items} more items]`);
    return kept;
  }
  const entries = Object.entries(value);
  const kept = entries.slice(0, items).map(([k, v]) => [k, shrink(v, items, chars, depth + 1)]);
  if (entries.length > items) kept.push(['…', `[${entries.length - items} more keys]`]);
  return Object.fromEntries(kept);
}

/**
 * The largest n in [low, high] with `fits(n)`, assuming fits is monotone; undefined if none.
 * Grows from `low` by doubling first, so no probe is much larger than the answer.
 */
function largestFitting(low: number, high: number, fits: (n: number) => boolean): number | undefined {
  if (high < low || !fits(low)) return undefined;
  let good = low;
  let step = 1;
  let bad = high + 1;
  while (good + step < bad) {
    if (!fits(good + step)) {
      bad = good + step;
      break;
    }
    good += step;
    step *= 2;
  }
  while (bad - good > 1) {
    const mid = Math.floor((good + bad) / 2);
    if (fits(mid)) good = mid;
    else bad = mid;
  }
  return good;
}

/** The most entries of any array or object in `root`, and its longest string: the upper ends of the searches. */
function measure(root: unknown): { widest: number; longest: number } {
  let widest = 1;
  let longest = MIN_STRING_CHARS;
  const stack = [root];
  while (stack.length) {
    const value = stack.pop();
    if (typeof value === 'string') longest = Math.max(longest, value.length);
    if (typeof value !== 'object' || value === null) continue;
    const children = Array.isArray(value) ? value : Object.values(value);
    widest = Math.max(widest, children.length);
    for (const child of children) stack.push(child);
  }
  return { widest, longest };
}

/**
 * Where each page of `text` starts: pages of at most `pageTokens` tokens as they are shown (inside
 * a JSON string, escaped), never splitting a surrogate pair. Token counts of short chunks nearly add
 * up (quoting each chunk over-counts its borders), so pages are packed from chunks counted once,
 * then each page is checked exactly.
 */
export function pageStarts(text: string, pageTokens: number): number[] {
  const chunks: Array<{ end: number; tokens: number }> = [];
  for (let start = 0; start < text.length;) {
    const end = safeEnd(text, Math.min(text.length, start + PAGE_CHUNK_CHARS));
    chunks.push({ end, tokens: countTokens(jsonText(text.slice(start, end))) });
    start = end;
  }
  const starts = [0];
  for (let first = 0; first < chunks.length;) {
    let last = first;
    let tokens = chunks[first].tokens;
    while (last + 1 < chunks.length && tokens + chunks[last + 1].tokens <= pageTokens) tokens += chunks[++last].tokens;
    const start = starts.at(-1)!;
    while (last > first && countTokens(jsonText(text.slice(start, chunks[last].end))) > pageTokens) last--;
    first = last + 1;
    if (first < chunks.length) starts.push(chunks[last].end);
  }
  return starts;
}

function safeEnd(text: string, end: number): number {
  const code = text.charCodeAt(end - 1);
  return end < text.length && code >= 0xd800 && code <= 0xdbff ? end + 1 : end;
}

function format(n: number): string {
  return n.toLocaleString('en-US');
}

/** A job's answer; a result over the budget is replaced by a reference, a preview and a page count. */
export interface BudgetedJobView extends JobView {
  /** The stored full result (the blob of its JSON). */
  result_ref?: string;
  result_preview?: unknown;
  result_pages?: number;
  cut?: string;
}

export interface ResultPage {
  job_id: string;
  status: JobView['status'];
  result_ref: string;
  page: number;
  result_pages: number;
  /** Characters [start, end) of the result's JSON. */
  result_page: string;
}

export class ResultBudget {
  readonly maxTokens: number;
  private readonly blobs: BlobStore;
  private readonly recentPages = new Map<string, number[]>();

  constructor(maxTokens: number, blobs: BlobStore) {
    this.maxTokens = maxTokens;
    this.blobs = blobs;
  }

  /** An answer that is all data (a page of failed items, a resume preview): cut to the budget with a marker and `hint` if needed. */
  fit<T extends object>(
    answer: T,
    hint = 'the failed items are too large for one answer: read them with `durable-codemode jobs ledger JOB_ID --failed`',
  ): T | { answer: unknown; cut: string } {
    const { value, cut } = fitJson(answer, this.maxTokens, hint);
    return cut ? { answer: value, cut } : answer;
  }

  /** A search answer: the result, cut to the budget with a marker if needed. */
  search(result: unknown): { result: unknown; cut?: string } {
    const { value, cut } = fitJson(result, this.maxTokens, 'return fewer fields or filter more narrowly');
    return cut ? { result: value, cut } : { result: value };
  }

  /**
   * A job answer within the budget. Logs past a quarter of it are shortened; a result that does
   * not fit next to the rest is stored and answered as `result_ref`, `result_preview` and `result_pages`.
   */
  async job(view: JobView): Promise<BudgetedJobView> {
    const { result, ...rest } = view;
    const text = result === undefined ? '' : jsonText(result);
    const resultTokens = countTokens(text);
    if (countTokens(jsonText(rest)) + resultTokens <= this.maxTokens) return view;
    const quarter = Math.floor(this.maxTokens / 4);
    if (countTokens(jsonText(rest.logs)) > quarter) {
      // Reversed, so the latest lines stay and the marker of the dropped ones comes first.
      rest.logs = (fitJson(rest.logs.toReversed(), quarter, '').value as string[]).toReversed();
    }
    if (result === undefined) return rest;
    const restTokens = countTokens(jsonText(rest));
    if (restTokens + resultTokens <= this.maxTokens) return { ...rest, result };
    const bytes = Buffer.from(text);
    const pages = this.pageStartsOf(bytes, text).length;
    const hint = `read all of it with job({ job_id, page }) for page 1 to ${pages}, or return fewer fields`;
    const preview = fitJson(result, Math.max(quarter, this.maxTokens - restTokens - PAGE_OVERHEAD_TOKENS), hint, text);
    if (!preview.cut) return { ...rest, result };
    const ref = await this.blobs.put(bytes);
    return { ...rest, result_ref: ref.blob, result_preview: preview.value, result_pages: pages, cut: preview.cut };
  }

  /** Page `page` (1-based) of a completed job's result; the result is stored (again, idempotently) so result_ref stays valid. */
  async page(view: JobView, page: number): Promise<ResultPage> {
    if (view.status !== 'completed')
      throw new JobStateError(
        `Job ${view.job_id} is ${view.status}: only a completed job's result has pages. Call the job tool without page.`,
      );
    const text = jsonText(view.result);
    const bytes = Buffer.from(text);
    const ref = await this.blobs.put(bytes);
    const starts = this.pageStartsOf(bytes, text);
    if (!Number.isInteger(page) || page < 1 || page > starts.length) {
      throw new ProductError(
        'ResultPageError',
        `Job ${view.job_id}'s result has ${starts.length} page${starts.length > 1 ? 's' : ''}: ask for page 1${starts.length > 1 ? ` to ${starts.length}` : ''}, not ${page}.`,
      );
    }
    return {
      job_id: view.job_id,
      status: view.status,
      result_ref: ref.blob,
      page,
      result_pages: starts.length,
      result_page: text.slice(starts[page - 1], starts[page] ?? text.length),
    };
  }

  private pageStartsOf(bytes: Buffer, text: string): number[] {
    const key = contentAddress(bytes);
    let starts = this.recentPages.get(key);
    if (!starts) {
      starts = pageStarts(text, Math.max(100, this.maxTokens - PAGE_OVERHEAD_TOKENS));
      this.recentPages.set(key, starts);
      if (this.recentPages.size > PAGED_RESULTS_KEPT) this.recentPages.delete(this.recentPages.keys().next().value!);
    }
    return starts;
  }
}
