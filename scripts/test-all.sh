#!/usr/bin/env bash
# `make test`: the whole suite in three runs, one after the other (so the clusters' start-up does
# not load the machine under the timing-sensitive tests of another run):
#   1. static checks, unit, workflow and integration tests on a Temporal dev server → test-results/vitest.json
#   2. cluster tests, each file on a native cluster of its own (test/cluster) → test-results/vitest-cluster.json
#   3. the integration tests again, on a native cluster (npm run test:on-cluster; all but the escape
#      corpus, which tests the sandbox alone, and the 100,000-row imports, whose waits are sized for
#      the dev server) → test-results/vitest-on-cluster.json
# Every run runs; the exit status is non-zero if any failed. scripts/test-summary.mjs adds the reports up.
set -uo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

rc=0
phase() { # report, command...
  local report="$1" start=$SECONDS
  shift
  DCM_TEST_REPORT="$report" "$@" || rc=$?
  echo "== $*: $((SECONDS - start)) s"
}
phase test-results/vitest.json npx vitest run --project unit --project workflow --project checks --project integration
phase test-results/vitest-cluster.json npx vitest run --project cluster
phase test-results/vitest-on-cluster.json npm run test:on-cluster
exit "$rc"
