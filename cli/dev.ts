/**
 * `durable-codemode dev`: everything on this machine in one process. A Temporal dev server of its
 * own (never a stranger's: its ports are checked first, and it joins an existing server only when
 * given --temporal-address), the Temporal UI, a worker, the MCP HTTP server and, without configured
 * providers, the demo APIs. A failure anywhere during start-up stops what already started.
 */
import { startDemoApis } from '../demo-apis/index.ts';
import { DEMO_PORTS } from '../demo-apis/providers.ts';
import { connectClient, connectWorker } from '../temporal/connection.ts';
import { startDevServer } from '../temporal/dev-server.ts';
import { startWorker } from '../temporal/worker.ts';
import type { Config } from './config.ts';
import { checkCredentials } from './credentials.ts';
import { devDataDir, devTaskQueue, forgetServer, recordServer, serverUsing } from './dev-data-dir.ts';
import { type PortPlanned, type PortWanted, planPorts } from './dev-ports.ts';
import { httpOptionsOf, mcpDeps, serveHttp } from './mcp-front.ts';
import { portOption, UsageError, type Values } from './options.ts';
import { configOf, runtimeConfig } from './runtime-config.ts';
import { onShutdown, Started } from './shutdown.ts';
import { installWorkerLogging } from './worker-logging.ts';

const LOOPBACK = '127.0.0.1';

export async function run(values: Values): Promise<void> {
  const config = configOf(values);
  const usesDemo = Object.keys(config.providers).length === 0;
  const external = values['temporal-address'] as string | undefined;
  if (external !== undefined && (values['temporal-port'] !== undefined || values['ui-port'] !== undefined))
    throw new UsageError(
      '--temporal-address uses a Temporal server that is already running: --temporal-port and --ui-port would start one.',
    );
  if (!usesDemo && (values['crm-port'] !== undefined || values['sheets-port'] !== undefined))
    throw new UsageError(
      '--crm-port and --sheets-port place the demo APIs, which run only when the config names no providers.',
    );

  // Every port, settled before anything starts.
  const wanted = wantedPorts(values, config, usesDemo, external !== undefined);
  const ports = await planPorts(
    wanted,
    external === undefined
      ? '\n(dev never joins a Temporal server it did not start; to use one that is running, pass --temporal-address HOST:PORT.)'
      : '',
  );
  const portOf = (flag: string) => ports.find((p) => p.flag === flag)?.port;

  const uiPort = portOf('--ui-port');
  const uiOrigins = uiPort ? [`http://localhost:${uiPort}`, `http://${LOOPBACK}:${uiPort}`] : [];
  // The Temporal UI calls the codec endpoint from its own origin.
  const httpOptions = httpOptionsOf(config, config.http.host, portOf('--port')!, uiOrigins);
  // Served to the operator only, i.e. by a server without tokens (server/http.ts).
  const codecEndpoint =
    httpOptions.codec && !httpOptions.tokens?.principals.length
      ? `http://${LOOPBACK}:${httpOptions.port}/codec`
      : undefined;
  const runtime = runtimeConfig(config, { crm: portOf('--crm-port')!, sheets: portOf('--sheets-port')! }).config;
  checkCredentials(runtime.providers);
  const data = devDataDir(runtime.dataDir);
  if (external === undefined) {
    const pid = serverUsing(data);
    if (pid)
      throw new Error(
        `A Temporal dev server (pid ${pid}) is already running on ${data.sqlite}: another \`durable-codemode dev\` on this data dir, or one left behind by a dev that was killed. ` +
          `Stop it (kill ${pid}), or give this dev a data dir of its own (dataDir in the config, or DURABLE_CODEMODE_DATA_DIR).`,
      );
  } else if (runtime.temporal.taskQueue === 'durable-codemode' && !process.env.DURABLE_CODEMODE_TASK_QUEUE) {
    // On a shared server, this dev's jobs go to its own workers only.
    runtime.temporal.taskQueue = devTaskQueue(runtime.temporal.taskQueue, data.dir);
  }

  const started = new Started();
  onShutdown(() => started.stopAll());
  try {
    const demo = usesDemo
      ? await startDemoApis({ host: LOOPBACK, crmPort: portOf('--crm-port'), sheetsPort: portOf('--sheets-port') })
      : undefined;
    if (demo) started.add('the demo APIs', () => demo.close());

    let temporalUi: string | undefined;
    if (external === undefined) {
      const server = await startDevServer({
        dbFilename: data.sqlite,
        port: portOf('--temporal-port'),
        uiPort,
        codecEndpoint,
        logFile: data.log,
        ownProcessGroup: true,
      });
      started.add('the Temporal dev server', () => server.teardown());
      recordServer(data, server.pid);
      started.add('its pid file', async () => forgetServer(data));
      runtime.temporal.address = server.address;
      temporalUi = server.uiUrl;
    } else {
      runtime.temporal.address = external;
    }

    installWorkerLogging();
    const connection = await connectWorker(runtime.temporal);
    started.add('the worker connection', () => connection.close());
    const worker = await startWorker(runtime, connection);
    started.add('the worker', () => worker.shutdown());
    const client = await connectClient(runtime.temporal);
    started.add('the client connection', () => client.connection.close());
    const http = await serveHttp(await mcpDeps(runtime, client), httpOptions);
    started.add('the MCP HTTP server', () => http.close());

    console.log(banner({ runtime, usesDemo, mcpUrl: http.url, temporalUi, codecEndpoint, data, ports, external }));
    // The worker stops on Ctrl-C, or fails: either way nothing else keeps running.
    await worker.done;
    await started.stopAll();
  } catch (e) {
    await started.stopAll();
    throw e;
  }
}

function banner(s: {
  runtime: Config;
  usesDemo: boolean;
  mcpUrl: string;
  temporalUi?: string;
  codecEndpoint?: string;
  data: ReturnType<typeof devDataDir>;
  ports: PortPlanned[];
  external?: string;
}): string {
  const { temporal } = s.runtime;
  const picked = s.ports.filter((p) => p.picked);
  const stdioEnv = [
    ...(temporal.address !== 'localhost:7233' ? [`TEMPORAL_ADDRESS=${temporal.address}`] : []),
    ...(temporal.taskQueue !== 'durable-codemode' ? [`DURABLE_CODEMODE_TASK_QUEUE=${temporal.taskQueue}`] : []),
  ];
  const rows = [
    ['MCP endpoint (HTTP)', s.mcpUrl],
    ...(s.codecEndpoint
      ? [['Codec endpoint', `${s.codecEndpoint}  (payloads are encrypted; the UI decodes through it)`]]
      : []),
    [
      'Temporal UI',
      s.temporalUi
        ? `${s.temporalUi}/namespaces/${temporal.namespace}/workflows`
        : `(the server at ${s.external} has its own, if any)`,
    ],
    [
      'Temporal server',
      `${temporal.address}, namespace ${temporal.namespace}, task queue ${temporal.taskQueue}${s.external ? '  (not started by dev)' : ''}`,
    ],
    ...(s.external ? [] : [['Temporal state', `${s.data.sqlite}  (server log: ${s.data.log})`]]),
    [
      'Providers',
      Object.entries(s.runtime.providers)
        .map(([name, p]) => `${name} ${'baseUrl' in p ? p.baseUrl : 'MCP'}`)
        .join(', ') + (s.usesDemo ? '  (bundled demo APIs)' : ''),
    ],
    ...(picked.length ? [['Ports picked', picked.map((p) => `${p.service} ${p.port} (${p.flag} 0)`).join(', ')]] : []),
  ];
  return `durable-codemode dev is running

${rows.map(([label, value]) => `  ${label.padEnd(21)}${value}`).join('\n')}

Connect an MCP client to the endpoint above, or over stdio with \`durable-codemode serve --stdio\`.
Watch jobs with \`durable-codemode jobs list\` and \`durable-codemode jobs watch JOB_ID\`.${stdioEnv.length ? `\n(In the shell or MCP client config that runs those: ${stdioEnv.join(' ')})` : ''}
Press Ctrl-C to stop; unfinished jobs continue on the next start.`;
}

/** The ports dev will listen on, from the flags (0: pick one) and the defaults. */
function wantedPorts(values: Values, config: Config, usesDemo: boolean, external: boolean): PortWanted[] {
  const want = (service: string, flag: string, host: string, fallback: number): PortWanted => ({
    service,
    flag,
    host,
    port: portOption(values, flag.slice(2), fallback),
  });
  const temporalPort = portOption(values, 'temporal-port', 7233);
  return [
    ...(external
      ? []
      : [
          want('Temporal frontend', '--temporal-port', LOOPBACK, 7233),
          // As the Temporal CLI does: the UI on the frontend's port + 1000.
          want('Temporal UI', '--ui-port', LOOPBACK, temporalPort === 0 ? 0 : temporalPort + 1000),
        ]),
    want('MCP HTTP server', '--port', config.http.host, config.http.port),
    ...(usesDemo
      ? [
          want('crm demo API', '--crm-port', LOOPBACK, DEMO_PORTS.crm),
          want('sheets demo API', '--sheets-port', LOOPBACK, DEMO_PORTS.sheets),
        ]
      : []),
  ];
}
