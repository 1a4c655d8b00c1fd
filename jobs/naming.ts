/**
 * How a job is named where operators see it (the Temporal UI's workflow list, `jobs list`): an id
 * that says what the job does (`import-leads-from-the-sheet-7k2m9q4x`), and a one-line summary.
 */
import { randomInt } from 'node:crypto';

const SLUG_MAX_CHARS = 40;
const RANDOM_CHARS = 8;
const ALPHABET = '0123456789abcdefghijklmnopqrstuvwxyz';

/** The script's lines without the arrow function's head (`async () => {`) and lone braces. */
function codeLines(code: string): string[] {
  return code
    .split('\n')
    .map((l) => l.trim().replace(/^(async\s*)?\([^)]*\)\s*=>\s*\{?\s*/, ''))
    .filter((l) => l && l !== '}');
}

/** The script's first line when it is a comment: the author's own words for what it does. */
function leadingComment(code: string): string | undefined {
  const first = codeLines(code)[0];
  return first?.startsWith('//') ? first.replace(/^\/\/+\s*/, '') || undefined : undefined;
}

/** The line that says what the job does: its name, the script's leading comment, or its first line of code. */
export function summarize(code: string, name?: string): string {
  const firstCode = codeLines(code).find((l) => !l.startsWith('//'));
  return (name?.trim() || leadingComment(code) || firstCode || code.trim()).slice(0, 100);
}

/**
 * What a job's id says: the agent's name for the job, else the script's leading comment, else its
 * first API call (`crm POST /leads/batch`).
 */
export function jobIdSource(code: string, name?: string): string {
  const call = /(\w+)\.request\(\s*\{\s*method:\s*['"](\w+)['"]\s*,\s*path:\s*['"`]([^'"`?]*)/.exec(code);
  return name?.trim() || leadingComment(code) || (call ? call.slice(1).join(' ') : '');
}

/** A job id: a slug of `source` (see jobIdSource) and a random part, so ids are unique and tell jobs apart. */
export function newJobId(source: string): string {
  const random = Array.from({ length: RANDOM_CHARS }, () => ALPHABET[randomInt(ALPHABET.length)]).join('');
  return `${slug(source) || 'job'}-${random}`;
}

/** Lower-case words joined by dashes, at most 40 characters, cut between words. */
export function slug(text: string): string {
  let out = '';
  for (const word of text.toLowerCase().split(/[^a-z0-9]+/)) {
    if (!word) continue;
    const next = out ? `${out}-${word}` : word;
    if (next.length > SLUG_MAX_CHARS) return out || word.slice(0, SLUG_MAX_CHARS);
    out = next;
  }
  return out;
}
