/** The workflow's live view of a job (the `jobState` query), and how each round's report updates it. */
import * as wf from '@temporalio/workflow';
import type { AdvanceResult, JobInput, JobState } from '../core/journal.ts';

/** Lines of the script's console kept in workflow state (and so in query answers and results). */
const RECENT_LOG_LINES = 50;

export function newJobState(job: JobInput): JobState {
  return {
    status: 'running',
    progress: null,
    logs: [],
    logCount: 0,
    rounds: 0,
    effects: 0,
    startedAt: Date.now(),
    runs: 0,
    attempt: job.attempt,
    divergence: null,
  };
}

/** Adds the providers the report's calls go to (for the DcmProviders search attribute). */
export function noteProviders(state: JobState, report: AdvanceResult): void {
  const providers = new Set(state.providers);
  for (const { request } of report.effects) if ('provider' in request) providers.add(request.provider);
  if (providers.size !== (state.providers?.length ?? 0)) state.providers = [...providers];
}

/** Takes in the round's logs, progress and ledger counts; progress also shows as the workflow's current details. */
export function absorb(state: JobState, report: AdvanceResult): void {
  if (report.logs.length > 0 || report.droppedLogs > 0) {
    const lines =
      report.droppedLogs > 0
        ? [...report.logs, `[${report.droppedLogs} log line(s) dropped: log limit reached]`]
        : report.logs;
    state.logCount += lines.length;
    state.logs = [...state.logs, ...lines].slice(-RECENT_LOG_LINES);
  }
  if (report.ledger) state.ledger = report.ledger;
  if (report.progress) {
    state.progress = report.progress;
    const { done, total, message } = report.progress;
    wf.setCurrentDetails(
      `**Progress:** ${done}${total !== null ? ` / ${total}` : ''}${message ? ` — ${message}` : ''}`,
    );
  }
}
