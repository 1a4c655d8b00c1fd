/** The worker's young generation cap (cli/worker-memory.ts): applied by re-executing the process once, an operator's own cap kept. */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { WORKER_NODE_FLAG, WORKER_SEMI_SPACE_MB } from '../../cli/worker-memory.ts';

const MODULE = fileURLToPath(new URL('../../cli/worker-memory.ts', import.meta.url));

/** Runs a script that reports itself, caps the young generation, then reports what it runs with. */
function run(env: NodeJS.ProcessEnv = {}, nodeFlags: string[] = []) {
  const script = join(mkdtempSync(join(tmpdir(), 'dcm-worker-memory-')), 'script.mjs');
  writeFileSync(
    script,
    `const { capYoungGeneration } = await import(${JSON.stringify(MODULE)});
console.log('started', process.pid);
capYoungGeneration();
console.log(JSON.stringify({ pid: process.pid, execArgv: process.execArgv, args: process.argv.slice(2) }));`,
  );
  const r = spawnSync(process.execPath, ['--no-node-snapshot', ...nodeFlags, script, 'worker', '--config', 'x.json'], {
    encoding: 'utf8',
    env: { ...process.env, ...env },
    timeout: 30_000,
  });
  expect(r.status, r.stderr).toBe(0);
  const lines = r.stdout.trim().split('\n');
  return { starts: lines.filter((l) => l.startsWith('started ')), last: JSON.parse(lines.at(-1)!) };
}

describe('the worker young generation cap', () => {
  it('re-executes the process once with the cap, keeping its id, Node flags and arguments', () => {
    const { starts, last } = run({ NODE_OPTIONS: '' });
    expect(starts).toHaveLength(2);
    expect(new Set([...starts, `started ${last.pid}`]).size).toBe(1);
    expect(last.execArgv).toEqual(['--no-node-snapshot', `--max-semi-space-size=${WORKER_SEMI_SPACE_MB}`]);
    expect(last.args).toEqual(['worker', '--config', 'x.json']);
  });

  it("keeps the operator's own cap from NODE_OPTIONS", () => {
    const { starts, last } = run({ NODE_OPTIONS: '--max-semi-space-size=32' });
    expect(starts).toHaveLength(1);
    expect(last.execArgv).toEqual(['--no-node-snapshot']);
  });

  it('does not re-execute a process started with the cap, as the launcher and the Docker image start the worker', () => {
    const { starts, last } = run({ NODE_OPTIONS: '' }, [WORKER_NODE_FLAG]);
    expect(starts).toHaveLength(1);
    expect(last.execArgv).toEqual(['--no-node-snapshot', WORKER_NODE_FLAG]);
    // The image's entrypoint: test/unit/compose.test.ts.
    expect(readFileSync(new URL('../../bin/durable-codemode', import.meta.url), 'utf8')).toContain(WORKER_NODE_FLAG);
  });
});
