import { defineConfig } from 'vitest/config';

// isolated-vm needs Node's startup snapshot off, so every project runs in forks with it.
const common = { pool: 'forks' as const, execArgv: ['--no-node-snapshot'] };

export default defineConfig({
  test: {
    maxWorkers: 2,
    // A second run (npm run test:on-cluster) writes its own report, so both can be summarized.
    reporters: ['default', ['json', { outputFile: process.env.DCM_TEST_REPORT ?? 'test-results/vitest.json' }]],
    projects: [
      {
        // No Temporal server: pure logic, sandboxes, spec loading, config and file checks. Seconds.
        test: { ...common, name: 'unit', include: ['test/unit/**/*.test.ts'], testTimeout: 60_000 },
      },
      {
        // The workflow code alone, with stubbed activities, on Temporal's time-skipping test server
        // (Java; scripts/toolchain.sh installs it): days of timers pass in moments. No dev server.
        test: {
          ...common,
          name: 'workflow',
          include: ['test/workflow/**/*.test.ts'],
          testTimeout: 60_000,
          hookTimeout: 60_000,
        },
      },
      {
        // The repository's hygiene: types, lint, formatting, lock file (about a minute).
        test: { ...common, name: 'checks', include: ['test/checks/**/*.test.ts'], testTimeout: 300_000 },
      },
      {
        // One real Temporal dev server for the whole run (test/integration/global-setup.ts), real
        // HTTP APIs and real worker processes.
        test: {
          ...common,
          name: 'integration',
          include: ['test/integration/**/*.test.ts'],
          globalSetup: ['test/integration/global-setup.ts'],
          testTimeout: 180_000,
          hookTimeout: 180_000,
        },
      },
      {
        // Faults only a real cluster has: each file starts its own native deployment
        // (deploy/native/cluster.sh, test/native-cluster.ts) and kills, stops and restarts its parts.
        test: {
          ...common,
          name: 'cluster',
          include: ['test/cluster/**/*.test.ts'],
          testTimeout: 300_000,
          // Building the binaries on a fresh machine takes minutes (once; they are cached).
          hookTimeout: 900_000,
        },
      },
    ],
  },
});
