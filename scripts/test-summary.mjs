#!/usr/bin/env node
// Summarize vitest JSON reports (reporter `['json', { outputFile: ... }]`), one or several runs.
//
// Usage: node scripts/test-summary.mjs [report.json ...] [--exit-code N]
//   report.json    default test-results/vitest.json; with several, the counts are added up
//   --exit-code N  exit code of the test command; a non-zero code with no failure in the
//                  reports (unhandled error, crash after tests) counts as one failure.
//
// Prints each run's counts and the time its integration test files took, then ends with exactly
// one line `N passed, N failed` (plus `, N skipped` when any) over all runs.
// Exits 1 when anything failed or a report is missing/unreadable, else 0.
import { readFileSync } from 'node:fs';

const args = process.argv.slice(2);
const reportPaths = [];
let runnerExit = 0;
for (let i = 0; i < args.length; i++) {
  if (args[i] === '--exit-code') runnerExit = Number(args[++i]) || 0;
  else if (args[i].startsWith('--exit-code=')) runnerExit = Number(args[i].slice(12)) || 0;
  else reportPaths.push(args[i]);
}
if (reportPaths.length === 0) reportPaths.push('test-results/vitest.json');

const n = (v) => (Number.isFinite(v) ? v : 0);
const lines = [];
let passed = 0;
let failed = 0;
let skipped = 0;

for (const reportPath of reportPaths) {
  let report;
  try {
    report = JSON.parse(readFileSync(reportPath, 'utf8'));
  } catch (err) {
    console.log(`${reportPath}: no usable report (${err.code ?? err.message}); the test runner probably crashed`);
    failed += 1;
    continue;
  }
  const files = Array.isArray(report.testResults) ? report.testResults : [];
  // Test files that failed without any failing test (import/syntax error, hook failure).
  const brokenFiles = files.filter(
    (f) => f.status === 'failed' && !(f.assertionResults ?? []).some((a) => a.status === 'failed'),
  );
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
  const run = {
    passed: n(report.numPassedTests),
    failed: n(report.numFailedTests) + brokenFiles.length,
    skipped: n(report.numPendingTests) + n(report.numTodoTests),
  };
  // The integration files' own time (summed over files), to compare the same tests on two servers.
  const integration = files.filter((f) => String(f.name).includes('/test/integration/'));
  const seconds = integration.reduce((sum, f) => sum + (n(f.endTime) - n(f.startTime)) / 1000, 0);
  console.log(
    `${reportPath}: ${run.passed} passed, ${run.failed} failed, ${run.skipped} skipped` +
      `${brokenFiles.length ? ` (${brokenFiles.length} test file(s) failed to run)` : ''}` +
      `${integration.length ? `; ${integration.length} integration files took ${seconds.toFixed(0)} s` : ''}`,
  );
  passed += run.passed;
  failed += run.failed;
  skipped += run.skipped;
}

let note = '';
if (runnerExit !== 0 && failed === 0) {
  failed = 1;
  note = ` — test command exited with code ${runnerExit} although no test failed (unhandled error?)`;
}

if (lines.length) console.log(`Failures:\n${lines.join('\n')}`);
console.log(`Tests: ${passed} passed, ${failed} failed, ${skipped} skipped${note}`);
console.log(`${passed} passed, ${failed} failed${skipped ? `, ${skipped} skipped` : ''}`);
process.exit(failed > 0 ? 1 : 0);
