/**
 * `durable-codemode dev` as a newcomer and an operator meet it, as real processes: it owns its ports
 * (a second, real Temporal dev server on its port is refused, never joined), it stops everything it
 * started when start-up fails, and the jobs it runs can be told apart: search attributes the
 * Temporal CLI filters on, `jobs list` one row per job, `jobs watch` live in a pseudo-terminal.
 */
import { execFile } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import type { Client as McpClient } from '@modelcontextprotocol/sdk/client/index.js';
import { Connection } from '@temporalio/client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { devTaskQueue } from '../../cli/dev-data-dir.ts';
import type { JobRow } from '../../jobs/service.ts';
import { findTemporalCli, startDevServer, type DevServer } from '../../temporal/dev-server.ts';
import { freePort, isPortFree } from '../../temporal/ports.ts';
import { startDev, freePorts, type DevProcess } from '../dev-process.ts';
import { CLI, eventually, mcpOverHttp } from '../harness.ts';

const run = promisify(execFile);

function hold(port: number): Promise<Server> {
  return new Promise((resolve) => {
    const server = createServer();
    server.listen(port, '127.0.0.1', () => resolve(server));
  });
}

/** Processes whose command line names this file (a Temporal dev server on a dev's SQLite file). */
function processesUsing(file: string): number[] {
  return readdirSync('/proc')
    .filter((p) => /^\d+$/.test(p))
    .filter((p) => {
      try {
        return readFileSync(`/proc/${p}/cmdline`, 'utf8').split('\0').includes(file);
      } catch {
        return false;
      }
    })
    .map(Number);
}

async function pollers(address: string, taskQueue: string): Promise<number> {
  const connection = await Connection.connect({ address });
  try {
    const { pollers } = await connection.workflowService.describeTaskQueue({
      namespace: 'default',
      taskQueue: { name: taskQueue },
      taskQueueType: 1, // workflow tasks
    });
    return pollers?.length ?? 0;
  } finally {
    await connection.close();
  }
}

describe('dev owns its ports', () => {
  let stranger: DevServer;

  beforeAll(async () => {
    // Another instance's Temporal server, with a worker-less default task queue.
    stranger = await startDevServer({ port: await freePort() });
  });
  afterAll(async () => {
    await stranger?.teardown();
  });

  it('refuses every port in use, naming it and its flag, and starts nothing', async () => {
    const strangerPort = Number(stranger.address.split(':')[1]);
    const [ui, mcp, crm, sheets] = await freePorts(4);
    const held = await Promise.all([ui, mcp, crm, sheets].map(hold));
    try {
      const dev = await startDev([
        ...['--temporal-port', String(strangerPort), '--ui-port', String(ui), '--port', String(mcp)],
        ...['--crm-port', String(crm), '--sheets-port', String(sheets)],
      ]);
      expect(await dev.exited).toBe(1);
      const out = dev.output();
      expect(out).toContain(`${strangerPort} (Temporal frontend) is in use: change it with --temporal-port, e.g.`);
      expect(out).toContain(`${ui} (Temporal UI) is in use: change it with --ui-port`);
      expect(out).toContain(`${mcp} (MCP HTTP server) is in use: change it with --port`);
      expect(out).toContain(`${crm} (crm demo API) is in use: change it with --crm-port`);
      expect(out).toContain(`${sheets} (sheets demo API) is in use: change it with --sheets-port`);
      expect(out).toContain('dev never joins a Temporal server it did not start');
      expect(out).not.toContain('dev is running');
      // Nothing started: no data dir, and no worker on the other server.
      expect(existsSync(join(dev.dir, '.durable-codemode'))).toBe(false);
      expect(await pollers(stranger.address, 'durable-codemode')).toBe(0);
    } finally {
      for (const server of held) server.close();
    }
  });

  it('joins a running server only when told to, on a task queue of its own data dir', async () => {
    const [mcp] = await freePorts(1);
    const dev = await startDev([
      '--temporal-address',
      stranger.address,
      '--port',
      String(mcp),
      '--crm-port',
      '0',
      '--sheets-port',
      '0',
    ]);
    try {
      const queue = devTaskQueue('durable-codemode', join(dev.dir, '.durable-codemode'));
      expect(dev.output()).toContain(
        `Temporal server      ${stranger.address}, namespace default, task queue ${queue}  (not started by dev)`,
      );
      expect(dev.output()).toContain(`DURABLE_CODEMODE_TASK_QUEUE=${queue}`);
      await eventually(
        async () => ((await pollers(stranger.address, queue)) > 0 ? true : undefined),
        30_000,
        'dev worker polling',
      );
      expect(await pollers(stranger.address, 'durable-codemode')).toBe(0);
    } finally {
      expect(await dev.stop()).toBe(0);
    }
  });

  it('stops the Temporal dev server it started when a later step fails', async () => {
    const [temporal, ui, mcp] = await freePorts(3);
    // An upstream MCP server that exits at once: the worker cannot start, after Temporal did.
    const dev = await startDev(
      ['--temporal-port', String(temporal), '--ui-port', String(ui), '--port', String(mcp)],
      {},
      { providers: { broken: { mcp: { command: [process.execPath, '-e', 'process.exit(3)'] } } } },
    );
    expect(await dev.exited).toBe(1);
    const sqlite = join(dev.dir, '.durable-codemode', 'temporal.sqlite');
    expect(existsSync(sqlite)).toBe(true); // it did start
    expect(processesUsing(sqlite)).toEqual([]);
    for (const port of [temporal, ui, mcp]) expect(await isPortFree('127.0.0.1', port)).toBe(true);
    expect(existsSync(join(dev.dir, '.durable-codemode', 'temporal.pid'))).toBe(false);
  });
});

describe('jobs an operator can tell apart', () => {
  const TOKENS = { alice: 'alice-token-0123456789', bob: 'bob-token-0123456789' };
  let dev: DevProcess;
  let address: string;
  let alice: McpClient;
  let bob: McpClient;

  const env = () => ({ ...process.env, TEMPORAL_ADDRESS: address });
  const cli = (args: string[]) => run(process.execPath, ['--no-node-snapshot', CLI, ...args], { env: env() });
  const execute = async (client: McpClient, args: Record<string, unknown>) =>
    (await client.callTool({ name: 'execute', arguments: args })).structuredContent as {
      job_id: string;
      status: string;
    };

  beforeAll(async () => {
    const [temporal, ui, mcp] = await freePorts(3);
    dev = await startDev(
      [
        '--temporal-port',
        String(temporal),
        '--ui-port',
        String(ui),
        '--port',
        String(mcp),
        '--crm-port',
        '0',
        '--sheets-port',
        '0',
      ],
      { DURABLE_CODEMODE_HTTP_TOKENS: `alice:${TOKENS.alice},bob:${TOKENS.bob}` },
    );
    expect(dev.output()).toContain('dev is running');
    address = `127.0.0.1:${temporal}`;
    const url = `http://127.0.0.1:${mcp}/mcp`;
    alice = await mcpOverHttp(url, TOKENS.alice);
    bob = await mcpOverHttp(url, TOKENS.bob);
  });
  afterAll(async () => {
    await alice?.close();
    await bob?.close();
    expect(await dev?.stop()).toBe(0);
  });

  it('has ids that say what the job does, and search attributes the Temporal CLI filters on', async () => {
    const a = await execute(alice, { code: 'async () => 1', name: 'Import leads', wait_seconds: 10 });
    const b = await execute(bob, { code: '// tidy up the CRM\nasync () => 2', wait_seconds: 10 });
    expect(a.job_id).toMatch(/^import-leads-[0-9a-z]{8}$/);
    expect(b.job_id).toMatch(/^tidy-up-the-crm-[0-9a-z]{8}$/);
    const list = async (query: string) => {
      const { stdout } = await run(findTemporalCli()!, [
        'workflow',
        'list',
        '--address',
        address,
        '--query',
        query,
        '--output',
        'json',
      ]);
      return (JSON.parse(stdout || '[]') as Array<{ execution: { workflowId: string } }>).map(
        (w) => w.execution.workflowId,
      );
    };
    const alices = await eventually(
      async () => {
        const ids = await list(`DcmOwner = 'alice'`);
        return ids.includes(a.job_id) ? ids : undefined;
      },
      30_000,
      "alice's job in the list",
    );
    expect(alices).not.toContain(b.job_id);
    expect(await list(`DcmOwner = 'bob' AND DcmAttempt = 1`)).toContain(b.job_id);
  });

  it('lists one row per job however many runs it took, filtered by owner and status', async () => {
    const failing = await execute(alice, {
      code: `async () => { await checkpoint({ n: 1 }); throw new Error('boom'); }`,
      name: 'flaky import',
      wait_seconds: 20,
    });
    expect(failing.status).toBe('failed');
    // The dev terminal says so in one line, not with the SDK's stack.
    const logged = await eventually(
      () =>
        dev
          .output()
          .split('\n')
          .find((l) => l.includes(`job ${failing.job_id} failed:`)),
      10_000,
      'the failure in the log',
    );
    expect(logged).toMatch(/\[WARN\] job flaky-import-[0-9a-z]{8} failed: Error: boom \(script line 1, column \d+\)$/);
    expect(dev.output()).not.toContain('at ApplicationFailure');
    const fixed = join(mkdtempSync(join(tmpdir(), 'dcm-fix-')), 'fixed.js');
    writeFileSync(fixed, 'async () => `fixed after ${resume.n}`');
    const resumed = await cli(['jobs', 'resume', failing.job_id, '--code', fixed, '--wait', '30']);
    expect(resumed.stdout).toMatch(new RegExp(`^${failing.job_id}  completed \\(attempt 2\\)`));
    expect(resumed.stdout).toContain('"fixed after 1"');

    const rows = JSON.parse(
      (await cli(['jobs', 'list', '--owner', 'alice', '--json', '--limit', '50'])).stdout,
    ) as JobRow[];
    expect(rows.filter((r) => r.job_id === failing.job_id)).toEqual([
      expect.objectContaining({ owner: 'alice', status: 'completed', attempt: 2, summary: 'flaky import' }),
    ]);
    expect(rows.every((r) => r.owner === 'alice')).toBe(true);
    const failed = JSON.parse((await cli(['jobs', 'list', '--status', 'failed', '--json'])).stdout) as JobRow[];
    expect(failed.map((r) => r.job_id)).not.toContain(failing.job_id);

    const table = (await cli(['jobs', 'list', '--owner', 'alice'])).stdout.split('\n');
    expect(table[0]).toMatch(/^JOB ID\s+STATUS\s+PROGRESS\s+ATTEMPT\s+OWNER\s+STARTED\s+DURATION\s+SUMMARY$/);
    expect(table.find((l) => l.startsWith(failing.job_id))).toMatch(/completed\s+-\s+2\s+alice\s.*flaky import$/);
  });

  it('watches a job live in a terminal: progress bar, rate and time left, then the result', async () => {
    const job = await execute(alice, {
      code: `async () => { for (let i = 1; i <= 16; i++) { await sleep(400); progress(i, 16, 'importing'); } return { imported: 16 }; }`,
      name: 'slow import',
      wait_seconds: 0,
    });
    const command = `${process.execPath} --no-node-snapshot ${CLI} jobs watch ${job.job_id}`;
    // `script` gives the command a pseudo-terminal, as a person's shell would.
    const { stdout } = await run('script', ['-qfec', command, '/dev/null'], { env: env() });
    expect(stdout).toContain('\r\x1b[K');
    expect(stdout).toMatch(/running {2}\[#+\.*\] {2}\d+\/16 \(\d+%\) {2}[\d.]+\/s {2}ETA \d+s {2}importing/);
    expect(stdout).toMatch(new RegExp(`${job.job_id} {2}completed`));
    expect(stdout).toContain('"imported": 16');
  });

  it('watches in plain lines without a terminal, and shows a job readably or as JSON', async () => {
    const job = await execute(alice, {
      code: `async () => { for (let i = 1; i <= 6; i++) { await sleep(400); progress(i, 6); console.log('row', i); } return 'ok'; }`,
      wait_seconds: 0,
    });
    const watched = await cli(['jobs', 'watch', job.job_id]);
    expect(watched.stdout).not.toContain('\r');
    expect(watched.stdout).toMatch(/^\d{4}-\d\d-\d\dT[\d:.]+Z {2}running {2}\[#*\.*\] {2}\d\/6/m);
    expect(watched.stdout).toContain('row 6');
    const page = (await cli(['jobs', 'show', job.job_id])).stdout;
    expect(page).toMatch(new RegExp(`^${job.job_id}  completed\n`));
    expect(page).toMatch(/ {2}owner {5}alice\n/);
    expect(page).toMatch(/ {2}progress {2}\[#+\] 6\/6 \(100%\)/);
    expect(page).toMatch(/ {2}logs {6}row 1\n/);
    expect(page).toContain('  result    "ok"');
    const json = JSON.parse((await cli(['jobs', 'show', job.job_id, '--json'])).stdout) as {
      status: string;
      result: unknown;
    };
    expect(json).toMatchObject({ status: 'completed', result: 'ok' });
  });

  it("speaks the CLI's commands, not MCP tool names", async () => {
    const failure = (args: string[]) =>
      cli(args).then(
        () => {
          throw new Error(`jobs ${args.join(' ')} succeeded`);
        },
        (e: { stderr: string; code: number }) => e,
      );
    expect(await failure(['jobs', 'show', 'no-such-job'])).toMatchObject({
      code: 1,
      stderr: expect.stringContaining('List job ids with `durable-codemode jobs list`.'),
    });
    const job = await execute(alice, { code: 'async () => { await sleep(60000); }', wait_seconds: 0 });
    const refused = await failure(['jobs', 'resume', job.job_id]);
    expect(refused.stderr).toContain('Cancel it first (`durable-codemode jobs cancel JOB_ID`)');
    expect(refused.stderr).not.toMatch(/job_cancel|job_status|job_resume/);
    expect((await cli(['jobs', 'cancel', job.job_id])).stdout).toMatch(new RegExp(`^${job.job_id}  cancelled`));
  });

  it("stops on its terminal's Ctrl-C: the worker first, then its Temporal server, which the Ctrl-C does not reach", async () => {
    const [server] = processesUsing(join(dev.dir, '.durable-codemode', 'temporal.sqlite'));
    const processGroup = (pid: number) =>
      Number(readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1].split(' ')[2]);
    expect(processGroup(server)).not.toBe(processGroup(dev.child.pid!));
    await execute(alice, { code: 'async () => { await sleep(60000); }', wait_seconds: 0 });
    const before = dev.output().length;
    expect(await dev.stop()).toBe(0);
    expect(existsSync(`/proc/${server}`)).toBe(false);
    // The worker stopped while its server still answered.
    expect(dev.output().slice(before)).not.toMatch(/errored|WARN|ERROR/);
  });
});
