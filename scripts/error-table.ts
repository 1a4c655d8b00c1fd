/**
 * README's table of errors, rendered from the catalogue (core/errors.ts), so the two cannot drift:
 * test/unit/errors.test.ts fails when README's table differs, and
 * `node scripts/error-table.ts` rewrites it.
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { ERROR_NAMES, ERRORS, type ErrorSeenBy } from '../core/errors.ts';

export const README = fileURLToPath(new URL('../README.md', import.meta.url));
export const START = '<!-- error table: generated from core/errors.ts by scripts/error-table.ts -->';
export const END = '<!-- end of error table -->';

const SEEN_BY: Record<ErrorSeenBy, string> = {
  script: 'the script (catchable)',
  job: "the job's `error`",
  tool: 'the tool answer',
};

export function errorTable(): string {
  const cell = (text: string) => text.replaceAll('|', '\\|');
  const rows = ERROR_NAMES.map((name) => {
    const { seenBy, means, todo } = ERRORS[name];
    return `| \`${name}\` | ${SEEN_BY[seenBy]} | ${cell(means)} | ${cell(todo)} |`;
  });
  return [START, '| error | seen in | what it means | what to do |', '|---|---|---|---|', ...rows, END].join('\n');
}

/** README's text with its table replaced by the catalogue's. */
export function withErrorTable(readme: string): string {
  const start = readme.indexOf(START);
  const end = readme.indexOf(END);
  if (start < 0 || end < start) throw new Error(`README.md has no error table between "${START}" and "${END}"`);
  return readme.slice(0, start) + errorTable() + readme.slice(end + END.length);
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  writeFileSync(README, withErrorTable(readFileSync(README, 'utf8')));
}
