/**
 * The native deployment (deploy/native/cluster.sh) as a test fixture: a private instance in a
 * temporary folder, on a block of free ports below 32768, with generated secrets. Used by the
 * integration tests when run against a real cluster (DCM_TEST_CLUSTER=native) and by the
 * cluster-only tests, which stop, kill and restart its parts.
 */
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { chmodSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

const SCRIPT = fileURLToPath(new URL('../deploy/native/cluster.sh', import.meta.url));
/** Ports the script takes from DCM_PORT_BASE (its PORTS table). */
const PORT_COUNT = 15;
/** Temporal keeps membership ports in a SQL smallint, and the kernel hands out ports above 32767. */
const HIGHEST_PORT = 32767;

export interface S3Access {
  endpoint: string;
  bucket: string;
  accessKeyId: string;
  secretAccessKey: string;
}

export interface NativeCluster {
  dir: string;
  /** The script's `env`: every port (DB_PORT, FRONTEND_GRPC_PORT, UI_PORT, ...) and address. */
  env: Record<string, string>;
  temporalAddress: string;
  namespace: string;
  s3: S3Access;
  uiUrl: string;
  mcpUrl: string;
  /** A bearer token the MCP server accepts (principal `alice`). */
  mcpToken: string;
  /** `cluster.sh up`: starts whatever is not running and waits until all of it is healthy. */
  up(): Promise<string>;
  /** `cluster.sh down [SERVICE...]`. */
  down(...services: string[]): Promise<string>;
  /** The pid of a running service (temporal, s3, ui, demo-apis, mcp, worker-N), from its pid file. */
  pid(service: string): number;
  /** A service's log so far. */
  log(service: string): string;
  /** Stops everything and deletes the folder. */
  destroy(): Promise<void>;
}

export interface NativeClusterOptions {
  /** Product settings instead of deploy/config.json (compose addresses in it are mapped as usual). */
  config?: Record<string, unknown>;
  workers?: number;
}

function run(args: string[], env: NodeJS.ProcessEnv): Promise<string> {
  return new Promise((resolve, reject) => {
    const child = spawn('bash', [SCRIPT, ...args], { env, stdio: ['ignore', 'pipe', 'pipe'] });
    let output = '';
    child.stdout.on('data', (d) => (output += d));
    child.stderr.on('data', (d) => (output += d));
    child.once('error', reject);
    child.once('exit', (code) =>
      code === 0 ? resolve(output) : reject(new Error(`cluster.sh ${args.join(' ')} exited with ${code}:\n${output}`)),
    );
  });
}

async function portFree(port: number): Promise<boolean> {
  const probe = createServer();
  return new Promise((resolve) => {
    probe.once('error', () => resolve(false));
    probe.listen(port, '127.0.0.1', () => probe.close(() => resolve(true)));
  });
}

/** A block of PORT_COUNT consecutive free loopback ports below 32768, away from common defaults. */
async function freePortBlock(): Promise<number> {
  for (let attempt = 0; attempt < 50; attempt++) {
    const base = 10_000 + Math.floor(Math.random() * (HIGHEST_PORT - PORT_COUNT - 10_000));
    const ports = Array.from({ length: PORT_COUNT }, (_, i) => base + i);
    if ((await Promise.all(ports.map(portFree))).every(Boolean)) return base;
  }
  throw new Error('no block of free ports below 32768 found');
}

const secret = () => randomBytes(18).toString('hex');

export async function startNativeCluster(options: NativeClusterOptions = {}): Promise<NativeCluster> {
  const dir = mkdtempSync(join(tmpdir(), 'dcm-native-'));
  chmodSync(dir, 0o755); // PostgreSQL runs as the postgres user when the tests run as root
  const s3 = { accessKeyId: 'durable-codemode', secretAccessKey: secret() };
  const mcpToken = secret();
  const postgresPassword = secret();
  // The variables of deploy/.env.example and deploy/infra.env.example (compose.test.ts checks those names).
  writeFileSync(
    join(dir, '.env'),
    `DURABLE_CODEMODE_HTTP_TOKENS=alice:${mcpToken}\nAWS_ACCESS_KEY_ID=${s3.accessKeyId}\nAWS_SECRET_ACCESS_KEY=${s3.secretAccessKey}\n`,
  );
  writeFileSync(
    join(dir, 'infra.env'),
    `POSTGRES_PASSWORD=${postgresPassword}\nPOSTGRES_PWD=${postgresPassword}\nSQL_PASSWORD=${postgresPassword}\n` +
      `ROOT_ACCESS_KEY=s3-admin\nROOT_SECRET_KEY=${secret()}\n`,
  );
  const env: NodeJS.ProcessEnv = {
    ...process.env,
    DCM_NATIVE_DIR: join(dir, 'state'),
    DCM_ENV_FILE: join(dir, '.env'),
    DCM_INFRA_ENV_FILE: join(dir, 'infra.env'),
    DCM_PORT_BASE: String(await freePortBlock()),
    DCM_MCP_HOST: '127.0.0.1',
    DCM_WORKERS: String(options.workers ?? 2),
  };
  if (options.config) {
    env.DCM_CONFIG = join(dir, 'config.json');
    writeFileSync(env.DCM_CONFIG, JSON.stringify(options.config));
  }
  const up = () => run(['up'], env);
  const down = (...services: string[]) => run(['down', ...services], env);
  try {
    await up();
  } catch (e) {
    await down().catch(() => {});
    throw e;
  }
  const vars = Object.fromEntries(
    (await run(['env'], env))
      .trim()
      .split('\n')
      .map((line) => [line.slice(0, line.indexOf('=')), line.slice(line.indexOf('=') + 1)]),
  );
  const product = JSON.parse(readFileSync(vars.DURABLE_CODEMODE_CONFIG, 'utf8')) as {
    temporal: { namespace: string };
    blobs: { store: { bucket: string } };
  };
  const state = env.DCM_NATIVE_DIR!;
  return {
    dir,
    env: vars,
    temporalAddress: vars.TEMPORAL_ADDRESS,
    namespace: product.temporal.namespace,
    s3: { ...s3, endpoint: vars.S3_ENDPOINT, bucket: product.blobs.store.bucket },
    uiUrl: `http://127.0.0.1:${vars.UI_PORT}`,
    mcpUrl: `http://127.0.0.1:${vars.MCP_PORT}/mcp`,
    mcpToken,
    up,
    down,
    pid: (service) => Number(readFileSync(join(state, 'run', `${service}.pid`), 'utf8').split(' ')[0]),
    log: (service) => readFileSync(join(state, 'logs', `${service}.log`), 'utf8'),
    async destroy() {
      await down();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
