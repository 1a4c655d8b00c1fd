/**
 * The rounds loop of one run: take the sandbox's report, end the job if the script is done, run the
 * round (fused.ts), record it, continue as new when the run's history grows large, and go on with
 * the next report (delivered by the fused round, or by delivering the outcomes now).
 */
import * as wf from '@temporalio/workflow';
import type {
  AdvanceResult,
  DurableScriptInput,
  EffectOutcome,
  InFlightCall,
  JobInput,
  JobResult,
  JobState,
  SettledCall,
} from '../core/journal.ts';
import { idempotencyKey, MAX_UNCERTAIN_KEYS } from '../core/effects.ts';
import type { durableScript } from './durable-script.ts';
import type { Engine } from './effects.ts';
import { completed, effectLimitError, fail } from './end-of-job.ts';
import { type PlayedRound, runRound } from './fused.ts';
import { absorb, noteProviders } from './job-state.ts';
import type { RunJournal } from './journal.ts';
import { advance, openSession, releaseSession } from './sessions.ts';

/** This run's journal is carried to the next run by reference once it holds this much. */
const MAX_INLINE_JOURNAL_BYTES = 1024 * 1024;
/** Continue as new well before Temporal's 50 MiB history limit. */
const MAX_HISTORY_BYTES = 16 * 1024 * 1024;

export async function runRounds(
  engine: Engine,
  input: DurableScriptInput,
  state: JobState,
  journal: RunJournal,
): Promise<JobResult> {
  const { job } = input;
  /** The time the sandbox is handed for the round it runs next (journaled, so replays see the same). */
  let now: number;
  let report: AdvanceResult;
  if (input.carried) {
    // A continued run first takes up the round the previous run ended with, on the same live session.
    const { pending } = input.carried;
    now = pending.now;
    report =
      'report' in pending
        ? pending.report
        : await advance(job, pending.session, journal, state.rounds, pending.outcomes, now);
  } else {
    now = Date.now();
    const summary = input.previous ? `resume attempt ${job.attempt}: replay the previous journal` : 'start script';
    report = await openSession(summary, { job, journal: journal.parts(), now, previous: input.previous });
  }

  /** The report repeats one whose logs were taken in already (a replay after the session was lost). */
  let repeated = false;
  for (;;) {
    const ended = takeReport(engine, job, state, journal, report, repeated);
    if (ended) return ended;
    noteProviders(state, report);
    engine.attributes?.update(state);

    // A round that waits for a human lets go of its sandbox while it waits, and replays after.
    const { session } = report;
    engine.approvals.beginRound(() => releaseSession(session));
    const run = await runRound(engine, job, journal, report, now, state);
    for (const [i, played] of run.played.entries()) {
      if (i > 0) absorb(state, played.report);
      if (wf.CancellationScope.current().consideredCancelled) noteInFlight(state, played);
      if (played.calls.some((c) => 'unsettled' in c)) throw new wf.CancelledFailure('the job was cancelled mid-round');
      journal.record({
        now: played.now,
        steps: played.report.steps,
        effects: played.report.effects.map(({ key, label }, k) => {
          const { outcome, uncertain } = played.calls[k] as Extract<SettledCall, { outcome: unknown }>;
          return { key, label, outcome, ...(uncertain ? { uncertain } : {}) };
        }),
      });
      noteUncertain(job, state, played);
      state.effects += played.calls.length;
      state.rounds++;
    }

    repeated = run.replayed ?? false;
    if (run.next) {
      ({ report, now } = run.next);
      if (!repeated && shouldContinueAsNew(job, journal.inlineBytes))
        await continueAsNew(input, state, journal, { report, now });
      continue;
    }
    const last = run.played.at(-1)!;
    const outcomes = last.calls.map((c) => (c as { outcome: EffectOutcome }).outcome);
    now = Date.now();
    if (shouldContinueAsNew(job, journal.inlineBytes))
      await continueAsNew(input, state, journal, { session: last.report.session, outcomes, now });
    report = engine.approvals.waited
      ? await openSession(`replay ${state.rounds} rounds after an approval`, { job, journal: journal.parts(), now })
      : await advance(job, last.report.session, journal, state.rounds, outcomes, now);
  }
}

/** Takes in the sandbox's report; ends the job when the script is done or over its effect limit. */
function takeReport(
  engine: Engine,
  job: JobInput,
  state: JobState,
  journal: RunJournal,
  report: AdvanceResult,
  repeated: boolean,
): JobResult | undefined {
  if (report.adoption) {
    // A resumed attempt starts from the previous journal, as far as the new code agreed with it.
    journal.segments = report.adoption.journal;
    state.rounds = report.adoption.rounds;
    state.effects = report.adoption.effects;
    state.divergence = report.adoption.divergence;
  }
  absorb(state, repeated ? { ...report, logs: [], droppedLogs: 0 } : report);
  const { outcome } = report;
  if (outcome?.kind === 'returned') return completed(state, outcome.value);
  if (outcome?.kind === 'threw') fail(state, outcome.error, engine.attributes);
  if (state.effects + report.effects.length > job.limits.maxEffectsPerJob)
    fail(state, effectLimitError(job), engine.attributes);
  return undefined;
}

/** Counts the round's uncertain calls and keeps the first ones' Idempotency-Keys, for the job's status. */
function noteUncertain(job: JobInput, state: JobState, played: PlayedRound): void {
  const keys = played.calls.flatMap((c, k) =>
    'outcome' in c && c.uncertain ? [idempotencyKey(job.jobId, state.effects + k, played.report.effects[k].key)] : [],
  );
  if (keys.length === 0) return;
  state.uncertainCalls = (state.uncertainCalls ?? 0) + keys.length;
  state.uncertainKeys = [...(state.uncertainKeys ?? []), ...keys].slice(0, MAX_UNCERTAIN_KEYS);
}

/** The calls of the round the cancellation caught, and how each ended (for the cancelled job's status). */
function noteInFlight(state: JobState, played: PlayedRound): void {
  state.inFlight = played.report.effects.flatMap(({ request, label }, i): InFlightCall[] => {
    if (request.kind !== 'http' && request.kind !== 'tool') return [];
    const call = played.calls[i];
    const ended = 'outcome' in call ? (call.outcome.ok ? 'succeeded' : 'failed') : call.unsettled;
    return [{ label, ended: ended === 'retry' ? 'failed' : ended }];
  });
}

async function continueAsNew(
  input: DurableScriptInput,
  state: JobState,
  journal: RunJournal,
  pending: NonNullable<DurableScriptInput['carried']>['pending'],
): Promise<never> {
  const carried = { journal: await journal.save(), state, checkpoint: journal.checkpoint, pending };
  return wf.continueAsNew<typeof durableScript>({ job: input.job, carried });
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
