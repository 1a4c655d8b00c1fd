/**
 * The rounds loop of one run: take the sandbox's report, end the job if the script is done, run
 * the round's effects, record the round, continue as new when the run's history grows large, and
 * deliver the outcomes for the next report.
 */
import * as wf from '@temporalio/workflow';
import type { AdvanceResult, DurableScriptInput, JobInput, JobResult, JobState } from '../core/journal.ts';
import type { Approvals } from './approvals.ts';
import type { durableScript } from './durable-script.ts';
import { runRoundEffects } from './effects.ts';
import { completed, effectLimitError, fail } from './end-of-job.ts';
import { absorb } from './job-state.ts';
import type { RunJournal } from './journal.ts';
import { advance, openSession, releaseSession } from './sessions.ts';

/** This run's journal is carried to the next run by reference once it holds this much. */
const MAX_INLINE_JOURNAL_BYTES = 1024 * 1024;
/** Continue as new well before Temporal's 50 MiB history limit. */
const MAX_HISTORY_BYTES = 16 * 1024 * 1024;

export async function runRounds(
  input: DurableScriptInput,
  state: JobState,
  journal: RunJournal,
  approvals: Approvals,
): Promise<JobResult> {
  const { job } = input;
  /** The time the sandbox is handed for the round it runs next (journaled, so replays see the same). */
  let now: number;
  let report: AdvanceResult;
  if (input.carried) {
    // A continued run first delivers the round the previous run ended with, to the same live session.
    const { session, outcomes, now: carriedNow } = input.carried.pending;
    now = carriedNow;
    report = await advance(job, session, journal, state.rounds, outcomes, now);
  } else {
    now = Date.now();
    const summary = input.previous ? `resume attempt ${job.attempt}: replay the previous journal` : 'start script';
    report = await openSession(summary, { job, journal: journal.parts(), now, previous: input.previous });
  }

  for (;;) {
    if (report.adoption) {
      // A resumed attempt starts from the previous journal, as far as the new code agreed with it.
      journal.segments = report.adoption.journal;
      state.rounds = report.adoption.rounds;
      state.effects = report.adoption.effects;
      state.divergence = report.adoption.divergence;
    }
    absorb(state, report);
    const { outcome } = report;
    if (outcome?.kind === 'returned') return completed(state, outcome.value);
    if (outcome?.kind === 'threw') fail(state, outcome.error);
    if (state.effects + report.effects.length > job.limits.maxEffectsPerJob) fail(state, effectLimitError(job));

    // A round that waits for a human lets go of its sandbox while it waits, and replays after.
    const { session } = report;
    approvals.beginRound(() => releaseSession(session));
    const outcomes = await runRoundEffects(job, report.effects, state.effects, journal, approvals);
    journal.record({
      now,
      steps: report.steps,
      effects: report.effects.map(({ key, label }, i) => ({ key, label, outcome: outcomes[i] })),
    });
    state.effects += outcomes.length;
    state.rounds++;
    now = Date.now();

    if (shouldContinueAsNew(job, journal.inlineBytes)) {
      const carried = {
        journal: await journal.save(),
        state,
        checkpoint: journal.checkpoint,
        pending: { session: report.session, outcomes, now },
      };
      return await wf.continueAsNew<typeof durableScript>({ job, carried });
    }
    report = approvals.waited
      ? await openSession(`replay ${state.rounds} rounds after an approval`, { job, journal: journal.parts(), now })
      : await advance(job, report.session, journal, state.rounds, outcomes, now);
  }
}

function shouldContinueAsNew(job: JobInput, inlineBytes: number): boolean {
  const info = wf.workflowInfo();
  return (
    info.continueAsNewSuggested ||
    info.historyLength > job.maxEventsPerRun ||
    info.historySize > MAX_HISTORY_BYTES ||
    inlineBytes > MAX_INLINE_JOURNAL_BYTES
  );
}
