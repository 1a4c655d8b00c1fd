#!/usr/bin/env -S node --no-node-snapshot
/**
 * `durable-codemode`: the one command operators use.
 *   dev      Temporal dev server + UI, a worker, the MCP HTTP server (and demo APIs) in one process
 *   worker   a worker against an existing Temporal server
 *   serve    the MCP server (stdio or Streamable HTTP) against an existing Temporal server
 *   jobs     list / show / watch / cancel / resume jobs
 *   privacy  purge a principal's privacy vault
 *
 * Each command's module is loaded only when it runs, so a process loads only what its command uses
 * (a worker no MCP server, search sandbox, tokenizer or demo API; `jobs` no worker SDK).
 */
import { enableCompileCache } from 'node:module';
import { parseArgs, type ParseArgsConfig } from 'node:util';
import { PRODUCT_VERSION } from '../core/version.ts';
import { UsageError, type Values } from './options.ts';
import { capWorkerMemory } from './worker-memory.ts';

// V8 keeps the code it compiles for every module loaded from here on (the command's, the Temporal
// SDK's, the workflow thread's) in a cache on disk, NODE_COMPILE_CACHE or else
// <tmpdir>/node-compile-cache, checked against each file's content: the next start compiles only
// what changed (a worker uses about a sixth less CPU until it polls). Where the directory cannot
// be written, Node carries on without it. Worker threads (the SDK's workflow thread) take it from
// the environment, not from this call.
const compileCache = enableCompileCache().directory;
if (compileCache) process.env.NODE_COMPILE_CACHE ??= compileCache;

const CONFIG_HELP = `  --config FILE       JSON config (providers, limits, ...); also DURABLE_CODEMODE_CONFIG.
                      Without one, the bundled demo APIs (crm, sheets) are the providers.`;
const TEMPORAL_HELP = `Environment (Temporal's own conventions): TEMPORAL_ADDRESS (default localhost:7233), TEMPORAL_NAMESPACE
(default "default"), TEMPORAL_API_KEY, TEMPORAL_TLS_CLIENT_CERT_PATH / TEMPORAL_TLS_CLIENT_KEY_PATH,
TEMPORAL_PROFILE with the TOML config file (TEMPORAL_CONFIG_FILE); DURABLE_CODEMODE_TASK_QUEUE.`;

interface Command {
  summary: string;
  help: string;
  options: ParseArgsConfig['options'];
  run: () => Promise<{ run(values: Values, args: string[], help: string): Promise<void> }>;
}

const COMMANDS: Record<string, Command> = {
  dev: {
    summary: 'run everything on this machine: Temporal dev server + UI, worker, MCP HTTP server',
    help: `Usage: durable-codemode dev [--config FILE] [--port N] [--temporal-port N] [--ui-port N]
                            [--crm-port N] [--sheets-port N] [--temporal-address HOST:PORT]

Starts a Temporal dev server of its own that keeps its state in <dataDir>/temporal.sqlite (so
unfinished jobs continue after a restart), its web UI, a worker, and the MCP Streamable HTTP server.
With no providers configured it also starts the demo APIs (crm and sheets).

Every port is checked before anything starts: one already in use stops dev with the flag that
changes it. Pass 0 to any port flag to have a free port picked (dev prints it).

${CONFIG_HELP}
  --port N            MCP HTTP port (default: http.port in the config, 3000)
  --temporal-port N   Temporal frontend port (default 7233)
  --ui-port N         Temporal UI port (default: the frontend port + 1000)
  --crm-port N        crm demo API port (default 4001)
  --sheets-port N     sheets demo API port (default 4002)
  --temporal-address HOST:PORT
                      use this running Temporal server instead of starting one (dev never joins
                      a server it did not start unless told so); its jobs go to a task queue of
                      this data dir's own`,
    options: {
      config: { type: 'string' },
      port: { type: 'string' },
      'temporal-port': { type: 'string' },
      'ui-port': { type: 'string' },
      'crm-port': { type: 'string' },
      'sheets-port': { type: 'string' },
      'temporal-address': { type: 'string' },
    },
    run: () => {
      capWorkerMemory();
      return import('./dev.ts');
    },
  },
  worker: {
    summary: 'run a worker against an existing Temporal server',
    help: `Usage: durable-codemode worker [--config FILE]

Runs workflows, sandbox sessions and API calls. Start as many as you like on one task queue;
kill one and its jobs continue on the others (or on the next one started). A provider credential
missing from the environment stops the worker at start, naming the provider and the variable.

${CONFIG_HELP}
${TEMPORAL_HELP}`,
    options: { config: { type: 'string' } },
    run: () => {
      capWorkerMemory();
      return import('./worker.ts');
    },
  },
  serve: {
    summary: 'run the MCP server (--stdio or --http) against an existing Temporal server',
    help: `Usage: durable-codemode serve --stdio | --http [--port N] [--host H]

  --stdio             speak MCP on stdin/stdout (for clients that spawn the server)
  --http              serve MCP Streamable HTTP at http://HOST:PORT/mcp
  --port N            HTTP port (default 3000)
  --host H            HTTP host (default 127.0.0.1); a non-loopback host needs tokens
${CONFIG_HELP}

Over HTTP, DURABLE_CODEMODE_HTTP_TOKENS="alice:TOKEN,bob:TOKEN" (or http.tokens in the config)
requires a bearer token, and each principal sees only its own jobs. Without tokens the server
listens on loopback only, and local callers act as the operator (as stdio and the CLI do): they
see every job.
${TEMPORAL_HELP}`,
    options: {
      config: { type: 'string' },
      stdio: { type: 'boolean' },
      http: { type: 'boolean' },
      port: { type: 'string' },
      host: { type: 'string' },
    },
    run: () => import('./serve.ts'),
  },
  jobs: {
    summary: 'list, show, watch, cancel or resume jobs, export their ledger, or answer their approvals',
    help: `Usage: durable-codemode jobs list [--status S] [--owner NAME] [--limit N] [--json]
       durable-codemode jobs show JOB_ID [--wait SECONDS] [--json]
       durable-codemode jobs watch JOB_ID [--json]
       durable-codemode jobs cancel JOB_ID [--json]
       durable-codemode jobs resume JOB_ID [--code FILE] [--input FILE] [--wait SECONDS] [--dry-run] [--json]
       durable-codemode jobs ledger JOB_ID [--failed] [--format csv|json]
       durable-codemode jobs approve|deny JOB_ID [--id APPROVAL_ID] [--note TEXT] [--json]

list     the newest jobs, one row each: status, progress, attempt, owner, start, duration, summary
         (--status running|waiting_for_approval|completed|failed|cancelled, --owner NAME,
         --limit N: default 20)
show     a job's summary, progress, logs, pending approvals and its result or error
         (--wait: until it ends, at most S)
watch    follows a job to its end: a live progress bar with rate and time left on a terminal,
         a plain line per change otherwise; exits 0 when the job completed, 1 otherwise
resume   restarts a failed or cancelled job under the same id: its journal is replayed as far as
         the script (or the corrected one in --code FILE) agrees with it, so completed calls are not
         repeated, and each() skips the items done before; --input FILE (JSON) replaces the input.
         A completed job whose each() left failed items resumes too. --dry-run previews it and
         writes nothing: the journal's rounds that replay, where the script diverges, the first
         round that would write, and each() items to skip, retry and run new (reads past the
         journal, GET and HEAD, are sent to compute them)
ledger   the items of the job's each() calls, one per item (its latest attempt's entry): status,
         error and message; failed items with their own fields, to fix and feed back as input
         (--failed: only failed and uncertain items; --format csv, the default, or json)
approve  answer the job's pending approvals (all of them, or the one --id names) as the operator,
deny     with an optional --note; \`jobs show\` lists them

--json prints what the MCP tools answer (list: the rows), for scripts.
${TEMPORAL_HELP}
${CONFIG_HELP}`,
    options: {
      config: { type: 'string' },
      limit: { type: 'string' },
      status: { type: 'string' },
      owner: { type: 'string' },
      wait: { type: 'string' },
      code: { type: 'string' },
      json: { type: 'boolean' },
      failed: { type: 'boolean' },
      input: { type: 'string' },
      format: { type: 'string' },
      id: { type: 'string' },
      note: { type: 'string' },
      'dry-run': { type: 'boolean' },
    },
    run: () => import('./jobs.ts'),
  },
  privacy: {
    summary: "purge a principal's privacy vault (its tokens stop restoring)",
    help: `Usage: durable-codemode privacy purge PRINCIPAL [--config FILE]

Deletes everything PRINCIPAL's privacy vault holds (token <-> value) from the blob store that
workers and MCP servers share: every token shown to PRINCIPAL stops restoring at once, and calls
that use one fail with PrivacyTokenError. PRINCIPAL is the name before the colon in
DURABLE_CODEMODE_HTTP_TOKENS ("operator" for stdio and local callers).

${CONFIG_HELP}
  The blob store is the config's (blobs.store, dataDir), as for the workers.`,
    options: { config: { type: 'string' } },
    run: () => import('./privacy.ts'),
  },
};

function usage(): string {
  const lines = Object.entries(COMMANDS).map(([name, c]) => `  ${name.padEnd(8)} ${c.summary}`);
  return `durable-codemode: Code Mode over MCP with every script a durable Temporal workflow.

Usage: durable-codemode <command> [options]

Commands:
${lines.join('\n')}

Run \`durable-codemode <command> --help\` for a command's options, \`durable-codemode --version\` for the versions.`;
}

async function main(argv: string[]): Promise<void> {
  const [name, ...rest] = argv;
  if (!name || name === '--help' || name === '-h' || name === 'help') {
    console.log(usage());
    return;
  }
  if (name === '--version' || name === '-v') {
    // Which form runs: the compiled CLI (dist/js, what the launcher picks when up to date) or the sources.
    const form = import.meta.url.endsWith('.js') ? 'compiled JavaScript' : 'TypeScript sources';
    console.log(`durable-codemode ${PRODUCT_VERSION} (Node ${process.version}, ${form})`);
    return;
  }
  const command = Object.hasOwn(COMMANDS, name) ? COMMANDS[name] : undefined;
  if (!command) throw new UsageError(`Unknown command "${name}".\n\n${usage()}`);
  let parsed;
  try {
    parsed = parseArgs({
      args: rest,
      options: { ...command.options, help: { type: 'boolean', short: 'h' } },
      allowPositionals: true,
    });
  } catch (e) {
    throw new UsageError(`${(e as Error).message}\n\n${command.help}`);
  }
  const { values, positionals } = parsed;
  if (values.help) {
    console.log(command.help);
    return;
  }
  const module = await command.run();
  await module.run(values, positionals, command.help);
}

main(process.argv.slice(2)).catch((e: Error) => {
  console.error(e instanceof UsageError ? e.message : `durable-codemode: ${e.message}`);
  process.exit(e instanceof UsageError ? 2 : 1);
});
