/**
 * The worker SDK's log as an operator reads it in a terminal: the SDK's INFO lines (every worker
 * state change) would drown what `dev` prints, so the level is WARN unless
 * DURABLE_CODEMODE_LOG_LEVEL says otherwise; a failed job or activity attempt is one line (the
 * SDK's entry carries a stack of the SDK's own frames, ~20 lines, that says nothing about the
 * script); the warning that a worker has no workflows is expected for the session worker.
 * At DEBUG and TRACE every entry is logged as the SDK wrote it.
 */
import { DefaultLogger, type LogEntry, type LogLevel, Runtime } from '@temporalio/worker';

export function installWorkerLogging(env: NodeJS.ProcessEnv = process.env): void {
  const level = (env.DURABLE_CODEMODE_LOG_LEVEL?.toUpperCase() as LogLevel | undefined) ?? 'WARN';
  const verbose = level === 'DEBUG' || level === 'TRACE';
  const sdkLogger = new DefaultLogger(level);
  Runtime.install({
    logger: new DefaultLogger(level, (entry) => {
      const line = verbose ? undefined : conciseEntry(entry);
      if (line === undefined) sdkLogger.log(entry.level, entry.message, entry.meta);
      else if (line !== null)
        process.stderr.write(
          `${new Date(Number(entry.timestampNanos / 1_000_000n)).toISOString()} [${entry.level}] ${line}\n`,
        );
    }),
  });
}

const firstLine = (text: string | undefined) => (text ?? '').split('\n')[0];

/** The entry as one line; null to drop it; undefined to log it as the SDK wrote it. */
export function conciseEntry({ message, meta = {} }: Pick<LogEntry, 'message' | 'meta'>): string | null | undefined {
  if (message.startsWith('No workflows registered')) return null;
  const error = meta.error as Error | undefined;
  if (message === 'Workflow failed' && error)
    return `job ${String(meta.workflowId)} failed: ${firstLine(error.message)}`;
  if (message === 'Activity failed' && error)
    return `job ${String(meta.workflowId)}: ${String(meta.activityType)} attempt ${String(meta.attempt)} failed: ${firstLine(error.message)}`;
  return undefined;
}
