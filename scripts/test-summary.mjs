#!/usr/bin/env node
// Summarize a vitest JSON report (reporter `['json', { outputFile: 'test-results/vitest.json' }]`).
//
// Usage: node scripts/test-summary.mjs [report.json] [--exit-code N]
//   --exit-code N  exit code of the test command; a non-zero code with no failure in the
//                  report (unhandled error, crash after tests) counts as one failure.
//
// Output ends with exactly one line `N passed, N failed` (plus `, N skipped` when any).
// Exits 1 when anything failed or the report is missing/unreadable, else 0.
import { readFileSync } from 'node:fs';

const args = process.argv.slice(2);
let reportPath = 'test-results/vitest.json';
let runnerExit = 0;
for (let i = 0; i < args.length; i++) {
  if (args[i] === '--exit-code') runnerExit = Number(args[++i]) || 0;
  else if (args[i].startsWith('--exit-code=')) runnerExit = Number(args[i].slice(12)) || 0;
  else reportPath = args[i];
}

let report;
try {
  report = JSON.parse(readFileSync(reportPath, 'utf8'));
} catch (err) {
  console.log(
    `Tests: no usable report at ${reportPath} (${err.code ?? err.message}); the test runner probably crashed` +
      (runnerExit ? ` (exit code ${runnerExit})` : ''),
  );
  console.log('0 passed, 1 failed');
  process.exit(1);
}

const n = (v) => (Number.isFinite(v) ? v : 0);
const passed = n(report.numPassedTests);
let failed = n(report.numFailedTests);
const skipped = n(report.numPendingTests) + n(report.numTodoTests);
const total = n(report.numTotalTests);

// Test files that failed without any failing test (import/syntax error, hook failure).
const files = Array.isArray(report.testResults) ? report.testResults : [];
const brokenFiles = files.filter(
  (f) => f.status === 'failed' && !(f.assertionResults ?? []).some((a) => a.status === 'failed'),
);

const lines = [];
for (const f of files) {
  for (const a of f.assertionResults ?? []) {
    if (a.status !== 'failed') continue;
    const msg = String((a.failureMessages ?? [])[0] ?? '').split('\n')[0];
    lines.push(`  FAIL ${f.name ?? '?'} > ${a.fullName ?? a.title}${msg ? `\n       ${msg}` : ''}`);
  }
}
for (const f of brokenFiles) {
  const msg = String(f.message ?? '').split('\n')[0];
  lines.push(`  FAIL ${f.name ?? '?'} (file failed${msg ? `: ${msg}` : ''})`);
}
failed += brokenFiles.length;

let note = '';
if (runnerExit !== 0 && failed === 0) {
  failed = 1;
  note = ` — test command exited with code ${runnerExit} although no test failed (unhandled error?)`;
}

if (lines.length) console.log(`Failures:\n${lines.join('\n')}`);
console.log(
  `Tests: ${passed} passed, ${failed} failed, ${skipped} skipped (${total} total` +
    `${brokenFiles.length ? `; ${brokenFiles.length} test file(s) failed to run` : ''})${note}`,
);
console.log(`${passed} passed, ${failed} failed${skipped ? `, ${skipped} skipped` : ''}`);
process.exit(failed > 0 ? 1 : 0);
