/** The worker's memory settings (cli/worker-memory.ts): applied by re-executing the process once, an operator's own kept. */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { WORKER_MALLOC_ARENAS, WORKER_NODE_FLAG, WORKER_SEMI_SPACE_MB } from '../../cli/worker-memory.ts';

const MODULE = fileURLToPath(new URL('../../cli/worker-memory.ts', import.meta.url));

/** Runs a script that reports itself, takes the worker's memory settings, then reports what it runs with. */
function run(env: NodeJS.ProcessEnv = {}, nodeFlags: string[] = []) {
  const script = join(mkdtempSync(join(tmpdir(), 'dcm-worker-memory-')), 'script.mjs');
  writeFileSync(
    script,
    `const { capWorkerMemory } = await import(${JSON.stringify(MODULE)});
console.log('started', process.pid);
capWorkerMemory();
console.log(JSON.stringify({ pid: process.pid, execArgv: process.execArgv, args: process.argv.slice(2), arenas: process.env.MALLOC_ARENA_MAX ?? null }));`,
  );
  const r = spawnSync(process.execPath, ['--no-node-snapshot', ...nodeFlags, script, 'worker', '--config', 'x.json'], {
    encoding: 'utf8',
    env: Object.fromEntries(Object.entries({ ...process.env, ...env }).filter(([, v]) => v !== undefined)),
    timeout: 30_000,
  });
  expect(r.status, r.stderr).toBe(0);
  const lines = r.stdout.trim().split('\n');
  return { starts: lines.filter((l) => l.startsWith('started ')), last: JSON.parse(lines.at(-1)!) };
}

describe("the worker's memory settings", () => {
  it('re-executes the process once with the cap and the malloc arenas, keeping its id, Node flags and arguments', () => {
    const { starts, last } = run({ NODE_OPTIONS: '', MALLOC_ARENA_MAX: undefined });
    expect(starts).toHaveLength(2);
    expect(new Set([...starts, `started ${last.pid}`]).size).toBe(1);
    expect(last.execArgv).toEqual(['--no-node-snapshot', `--max-semi-space-size=${WORKER_SEMI_SPACE_MB}`]);
    expect(last.args).toEqual(['worker', '--config', 'x.json']);
    expect(last.arenas).toBe(String(WORKER_MALLOC_ARENAS));
  });

  it("keeps the operator's own cap from NODE_OPTIONS and arenas from the environment", () => {
    const { starts, last } = run({ NODE_OPTIONS: '--max-semi-space-size=32', MALLOC_ARENA_MAX: '4' });
    expect(starts).toHaveLength(1);
    expect(last.execArgv).toEqual(['--no-node-snapshot']);
    expect(last.arenas).toBe('4');
  });

  it('re-executes a process started with the cap but not the arenas only to take them', () => {
    const { starts, last } = run({ NODE_OPTIONS: '', MALLOC_ARENA_MAX: undefined }, [WORKER_NODE_FLAG]);
    expect(starts).toHaveLength(2);
    expect(last.execArgv).toEqual(['--no-node-snapshot', WORKER_NODE_FLAG]);
    expect(last.arenas).toBe(String(WORKER_MALLOC_ARENAS));
  });

  it('does not re-execute a process started with both, as the launcher and the Docker image start the worker', () => {
    const { starts, last } = run({ NODE_OPTIONS: '', MALLOC_ARENA_MAX: '2' }, [WORKER_NODE_FLAG]);
    expect(starts).toHaveLength(1);
    expect(last.execArgv).toEqual(['--no-node-snapshot', WORKER_NODE_FLAG]);
    const launcher = readFileSync(new URL('../../bin/durable-codemode', import.meta.url), 'utf8');
    expect(launcher).toContain(WORKER_NODE_FLAG);
    expect(launcher).toContain(`MALLOC_ARENA_MAX:-${WORKER_MALLOC_ARENAS}`);
    // The image's entrypoint: test/unit/compose.test.ts.
    expect(readFileSync(new URL('../../Dockerfile', import.meta.url), 'utf8')).toContain(
      `ENV MALLOC_ARENA_MAX=${WORKER_MALLOC_ARENAS}`,
    );
  });
});
