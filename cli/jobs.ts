/**
 * `durable-codemode jobs`: the operator's view of jobs. Readable by default, `--json` for scripts;
 * `watch` follows a job live (a progress bar on a terminal, plain lines otherwise) to its end.
 * The operator sees every job.
 */
import { readFileSync } from 'node:fs';
import {
  isLive,
  JobService,
  type JobStatus,
  type JobView,
  type JobWording,
  MAX_WAIT_SECONDS,
} from '../jobs/service.ts';
import { exportLedger, type LedgerFormat } from '../ledger/export.ts';
import { connectClient } from '../temporal/connection.ts';
import { jobPage, jobTable, previewPage, ProgressRate, watchLine } from './jobs-render.ts';
import { intOption, UsageError, type Values } from './options.ts';
import { loadRuntimeConfig } from './runtime-config.ts';

const STATUSES: JobStatus[] = ['running', 'waiting_for_approval', 'completed', 'failed', 'cancelled'];
const LEDGER_FORMATS: LedgerFormat[] = ['csv', 'json'];

/** The job service's advice in this CLI's own words. */
const CLI_WORDING: JobWording = {
  findId: 'List job ids with `durable-codemode jobs list`.',
  startNew: 'Start a new job from an MCP client (the execute tool).',
  stopFirst:
    'Cancel it first (`durable-codemode jobs cancel JOB_ID`), or wait for it (`durable-codemode jobs watch JOB_ID`).',
  follow: 'Follow it with `durable-codemode jobs watch JOB_ID`.',
  resume: 'Run it with `durable-codemode jobs resume JOB_ID` without --dry-run.',
};

export async function run(values: Values, args: string[], help: string): Promise<void> {
  const [action, jobId, ...extra] = args;
  const actions = ['list', 'show', 'watch', 'cancel', 'resume', 'ledger', 'approve', 'deny'];
  if (!action || !actions.includes(action)) throw new UsageError(help);
  if (action === 'list' ? jobId !== undefined : !jobId || extra.length)
    throw new UsageError(
      action === 'list' ? `jobs list takes no job id\n\n${help}` : `jobs ${action} takes one JOB_ID\n\n${help}`,
    );
  const status = values.status as JobStatus | undefined;
  if (status !== undefined && !STATUSES.includes(status))
    throw new UsageError(`--status must be one of ${STATUSES.join(', ')}; got ${status}`);
  const code = typeof values.code === 'string' ? readOptionFile('code', values.code) : undefined;
  const input = typeof values.input === 'string' ? parseInputFile(values.input) : undefined;
  const wait = intOption(values, 'wait', 0, { max: 3600 });
  const json = Boolean(values.json);
  const format = (values.format ?? 'csv') as LedgerFormat;
  if (!LEDGER_FORMATS.includes(format))
    throw new UsageError(`--format must be one of ${LEDGER_FORMATS.join(', ')}; got ${format}`);
  const { config } = loadRuntimeConfig(values);
  const client = await connectClient(config.temporal);
  const jobs = new JobService(client, config, undefined, { wording: CLI_WORDING });
  try {
    let exitCode = 0;
    if (action === 'list') {
      const rows = await jobs.list({
        limit: intOption(values, 'limit', 20, { min: 1 }),
        status,
        owner: values.owner as string | undefined,
      });
      console.log(
        json ? JSON.stringify(rows, null, 2) : jobTable(rows, process.stdout.isTTY ? process.stdout.columns : Infinity),
      );
    } else if (action === 'ledger') {
      exitCode = await printLedger(jobs, jobId, format, Boolean(values.failed));
    } else if (action === 'resume' && values['dry-run']) {
      const preview = await jobs.preview(jobId, code, input);
      console.log(json ? JSON.stringify(preview, null, 2) : previewPage(preview));
    } else if (action === 'watch') {
      exitCode = await watch(jobs, jobId, json);
    } else {
      const view =
        action === 'show'
          ? await waitFor(jobs, jobId, wait)
          : action === 'cancel'
            ? await jobs.cancel(jobId)
            : action === 'approve' || action === 'deny'
              ? await jobs.answer(jobId, {
                  approved: action === 'approve',
                  id: values.id as string | undefined,
                  note: values.note as string | undefined,
                  via: 'cli',
                })
              : await jobs.resume(jobId, code, Math.min(wait, MAX_WAIT_SECONDS), input);
      console.log(json ? JSON.stringify(view, null, 2) : jobPage(await jobs.info(jobId), view));
      if (!json && view.status === 'failed')
        console.log(
          `\nTo retry from its journal: durable-codemode jobs resume ${jobId} [--code FIXED.js] [--input FIXED.json]`,
        );
      exitCode = view.status === 'failed' ? 1 : 0;
    }
    process.exitCode = exitCode;
  } finally {
    await client.connection.close();
  }
}

/** Writes the job's ledger to stdout as it is read, a segment at a time (a million items never sit in memory). */
async function printLedger(
  jobs: JobService,
  jobId: string,
  format: LedgerFormat,
  failedOnly: boolean,
): Promise<number> {
  const ledger = await jobs.ledger(jobId);
  if (!ledger.exists) {
    console.error(`Job ${jobId} has no ledger yet: its script has not settled any item of an each().`);
    return 1;
  }
  for await (const chunk of exportLedger(ledger, format, { failedOnly })) {
    if (!process.stdout.write(chunk)) await new Promise((resolve) => process.stdout.once('drain', resolve));
  }
  return 0;
}

/** Waits up to `seconds` (beyond the service's cap per call, MAX_WAIT_SECONDS) for the job to end. */
async function waitFor(jobs: JobService, jobId: string, seconds: number): Promise<JobView> {
  const deadline = Date.now() + seconds * 1000;
  let view = await jobs.status(jobId, Math.min(seconds, MAX_WAIT_SECONDS));
  while (isLive(view.status) && Date.now() < deadline)
    view = await jobs.status(jobId, Math.min(Math.ceil((deadline - Date.now()) / 1000), MAX_WAIT_SECONDS));
  return view;
}

/**
 * Follows the job to its end. On a terminal one line is redrawn in place (bar, rate, time left) and
 * new log lines scroll above it; otherwise a plain line is printed whenever the progress changes.
 * Ends with the job's page (or its JSON); the exit code is 0 only for a completed job.
 */
async function watch(jobs: JobService, jobId: string, json: boolean): Promise<number> {
  const tty = Boolean(process.stdout.isTTY) && !json;
  const rate = new ProgressRate();
  let shownLogs = 0;
  let lastLine = '';
  let lastPrinted = 0;
  let view = await jobs.status(jobId);
  for (;;) {
    if (view.progress) rate.add(view.progress.done);
    const newLogs = Math.min(view.log_count - shownLogs, view.logs.length);
    const line = watchLine(view, rate.perSecond());
    if (tty) {
      process.stdout.write('\r\x1b[K');
      if (newLogs > 0) process.stdout.write(`${view.logs.slice(-newLogs).join('\n')}\n`);
      if (isLive(view.status)) process.stdout.write(line);
    } else if (!json) {
      if (newLogs > 0) console.log(view.logs.slice(-newLogs).join('\n'));
      // Plain lines: on a change of progress or message, at most once a second (the last one always).
      const changed = line.replace(/ {2}[\d.]+\/s.*$/, '') !== lastLine.replace(/ {2}[\d.]+\/s.*$/, '');
      if (isLive(view.status) && changed && Date.now() - lastPrinted >= 1000) {
        console.log(`${new Date().toISOString()}  ${line}`);
        lastLine = line;
        lastPrinted = Date.now();
      }
    }
    shownLogs = view.log_count;
    if (!isLive(view.status)) break;
    view = await jobs.status(jobId, 1);
  }
  // The logs have scrolled by already.
  console.log(json ? JSON.stringify(view, null, 2) : `\n${jobPage(await jobs.info(jobId), { ...view, logs: [] })}`);
  return view.status === 'completed' ? 0 : 1;
}

function readOptionFile(option: string, file: string): string {
  try {
    return readFileSync(file, 'utf8');
  } catch (e) {
    throw new UsageError(`Cannot read --${option} ${file}: ${(e as Error).message}`);
  }
}

/** A corrected input: a JSON file (e.g. the failed rows from `jobs ledger --failed --format json`, fixed). */
function parseInputFile(file: string): unknown {
  try {
    return JSON.parse(readOptionFile('input', file));
  } catch (e) {
    if (e instanceof UsageError) throw e;
    throw new UsageError(`--input ${file} is not JSON: ${(e as Error).message}`);
  }
}
