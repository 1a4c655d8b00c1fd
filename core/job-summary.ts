/**
 * The one place a job's summary is picked out of a larger record (the workflow's state, a result,
 * failure details). No zod and no Node APIs: bundled into workflow code.
 */
import type { JobSummary } from './journal.ts';

export function jobSummary(from: JobSummary): JobSummary {
  const {
    progress,
    logs,
    logCount,
    rounds,
    effects,
    runs,
    attempt,
    divergence,
    ledger,
    approvals,
    uncertainCalls,
    uncertainKeys,
  } = from;
  return {
    progress,
    logs,
    logCount,
    rounds,
    effects,
    runs,
    attempt,
    divergence,
    ...(ledger ? { ledger } : {}),
    ...(approvals ? { approvals } : {}),
    ...(uncertainCalls ? { uncertainCalls } : {}),
    ...(uncertainKeys ? { uncertainKeys } : {}),
  };
}
