/**
 * A fused round: on the worker holding the job's live sandbox, one activity makes the round's calls
 * (in parallel, each through the exactly-once call path), delivers their outcomes to the sandbox and
 * returns them with the sandbox's next report. The workflow then journals the round in one workflow
 * task: one activity and one workflow task per round.
 *
 * The round is not delivered when a call meets a transient API failure (the workflow retries it as
 * a per-call activity, with Temporal's backoff visible in the UI, then delivers) or when the job is
 * cancelled (calls already sent land within the grace period; their outcomes are recorded).
 *
 * Batched mode (opt-in per provider or job) runs on through consecutive call-only rounds of batched
 * providers in the same activity until a flush is due (a number of calls or a time), so the journal
 * lags behind the sandbox by up to one flush; the outcome records still keep every answered call
 * from being sent again after a crash.
 *
 * Otherwise, when the sandbox's next report asks only for calls, the activity starts them before it
 * returns (ahead.ts) and the next round's activity takes them up, with the sandbox's turn on their
 * answers when it has been taken meanwhile.
 */
import { ApplicationFailure } from '@temporalio/activity';
import type { ClaimCheck } from '../blobs/claim-check.ts';
import { idempotencyKey } from '../core/effects.ts';
import { INTERNAL_FAILURES } from '../core/errors.ts';
import type {
  AdvanceResult,
  CallResult,
  FusedRound,
  HttpEffect,
  PlannedEffect,
  RoundReport,
  RunRoundArgs,
  RunRoundResult,
  SettledCall,
  ToolEffect,
} from '../core/journal.ts';
import type { ScriptSession } from '../sandbox/session.ts';
import { callsAhead, mayGoAhead, type SandboxTurn } from './ahead.ts';
import { ActivityAttempt, type CallAttempt } from './attempt.ts';
import type { CallEnd, Calls } from './calls.ts';
import type { LiveSession, PreparedReport, SessionRegistry, WaitedEffect } from './sessions.ts';

export interface RoundDeps {
  sessions: SessionRegistry;
  calls: Calls;
  claims: ClaimCheck;
  /** Makes ready what of a report goes to history, before anything about its session changes (may run ahead). */
  prepare(report: RoundReport, owner: string | undefined): Promise<PreparedReport>;
  /** Keeps the session live with the effects of its report, and turns the prepared report into what the workflow gets. */
  plan(id: string, session: ScriptSession, prepared: PreparedReport, owner: string | undefined): Promise<AdvanceResult>;
  /** Called when the activity is through with the session's rounds (the host's garbage of large ones). */
  collectAfter(session: ScriptSession): void;
  /** Whether the approval policy of the session's job names this call (the workflow holds it for a human). */
  heldByPolicy(session: ScriptSession, request: HttpEffect | ToolEffect): boolean;
}

/**
 * The live session `id`, if it is on this worker and at round `roundsDelivered`; else the job must
 * replay. Calls started ahead (with perhaps the sandbox's turn on them) are for the fused round
 * that takes them up (`takesAhead`): anything else finds the session lost.
 */
export function takeLiveSession(
  sessions: SessionRegistry,
  id: string,
  roundsDelivered: number,
  takesAhead = false,
): LiveSession {
  const live = sessions.take(id);
  const delivered = live?.ahead ? takesAhead && live.ahead.roundsDelivered : live?.session.roundsDelivered;
  if (!live || delivered !== roundsDelivered) {
    live?.session.dispose();
    throw ApplicationFailure.nonRetryable(
      `live session ${id} is not on this worker; the job will replay its journal`,
      INTERNAL_FAILURES.SessionLost,
    );
  }
  return live;
}

/** Whether batched mode may run this round inside the same activity: calls to batched providers (and checkpoints) only. */
function batchable(effects: PlannedEffect[], providers: string[]): boolean {
  return (
    effects.length > 0 &&
    effects.every(
      ({ request }) =>
        request.kind === 'checkpoint' ||
        ((request.kind === 'http' || request.kind === 'tool') && providers.includes(request.provider)),
    )
  );
}

export function createRunRound(deps: RoundDeps) {
  const { sessions, calls, claims } = deps;

  /**
   * Delivers the results to the sandbox, which runs to its next report, made ready for history;
   * meanwhile their outcomes go to the blob store for history.
   */
  async function takeTurn(
    session: ScriptSession,
    results: CallResult[],
    owner: string | undefined,
  ): Promise<SandboxTurn> {
    const now = Date.now();
    const [outcomes, prepared] = await Promise.all([
      Promise.all(results.map((r) => claims.offloadOutcome(r.outcome))),
      session
        .deliver(
          results.map((r) => r.outcome),
          now,
        )
        .then((report) => deps.prepare(report, owner)),
    ]);
    return { now, outcomes, prepared };
  }

  return async function runRound(args: RunRoundArgs): Promise<RunRoundResult> {
    const attempt = new ActivityAttempt(args.jobAttempt, args.cancelGraceMs);
    let live = takeLiveSession(sessions, args.sessionId, args.roundsDelivered, true);
    const { session } = live;

    async function runEffect(effect: WaitedEffect, seq: number, by: CallAttempt = attempt): Promise<CallEnd> {
      const { request } = effect;
      if (effect.prefilled) return { result: { outcome: effect.prefilled } };
      if (request.kind === 'checkpoint') return { result: { outcome: { ok: true } } };
      if (request.kind === 'sleep' || request.kind === 'approval')
        throw new Error(`a round with a ${request.kind} is run by the workflow, not fused`);
      return calls.call(by, {
        jobId: session.jobId,
        request,
        idempotencyKey: idempotencyKey(session.jobId, seq, effect.key),
        maximumAttempts: args.maximumAttempts[request.provider] ?? 1,
        fresh: args.fresh,
        privacyOwner: args.privacyOwner,
        recordAfter: true,
      });
    }

    /** The sandbox may have seen outcomes that are not the journal's: the job replays in a new session. */
    function dropSession(reason: unknown): never {
      sessions.remove(args.sessionId);
      session.dispose();
      throw reason;
    }

    /** The round's calls: taken up when the round before started them ahead, else sent now. */
    function callsOf(waitingOn: WaitedEffect[], seq: number): Promise<CallEnd[]> {
      const { ahead } = live;
      if (!ahead) return Promise.all(waitingOn.map((effect, i) => runEffect(effect, seq + i)));
      // Started for this very round, unless the workflow's count and the worker's disagree: then the
      // job replays, and the calls' records answer for those that were sent.
      if (ahead.firstSeq !== seq) {
        session.dispose();
        throw ApplicationFailure.nonRetryable(
          `live session ${args.sessionId} started its calls ahead at position ${ahead.firstSeq}, not ${seq}; the job will replay its journal`,
          INTERNAL_FAILURES.SessionLost,
        );
      }
      ahead.attempt.adoptBy(attempt);
      return ahead.ends;
    }

    /** Starts the calls of the next report ahead of its round, when it may go ahead; whether it did. */
    function startAhead(report: AdvanceResult, seq: number): boolean {
      const held = (request: HttpEffect | ToolEffect) => deps.heldByPolicy(session, request);
      // Not from an attempt Temporal may have given up (a thawed worker): another one runs this round.
      if (!mayGoAhead(args, report, seq, held) || !attempt.isCurrent() || attempt.signal.aborted || session.isEnded)
        return false;
      const detached = attempt.detach();
      return sessions.startAhead(args.sessionId, (waitingOn) =>
        callsAhead(
          { firstSeq: seq, roundsDelivered: session.roundsDelivered },
          detached,
          () => waitingOn.map((effect, i) => runEffect(effect, seq + i, detached)),
          (results) => takeTurn(session, results, args.privacyOwner),
        ),
      );
    }

    /** The sandbox's turn on the round's results: taken already when they were the calls started ahead, else now. */
    async function turnOn(results: CallResult[]): Promise<SandboxTurn> {
      return (await live.ahead?.turn) ?? takeTurn(session, results, args.privacyOwner);
    }

    if (args.collect) return attempt.run(collect);
    return attempt.run(async () => {
      try {
        return await runRounds();
      } finally {
        deps.collectAfter(session);
      }
    });

    /** The job was cancelled before this round ran: the calls started ahead stop, and say how they ended. */
    async function collect(): Promise<RunRoundResult> {
      session.dispose();
      const { ahead } = live;
      if (!ahead || ahead.firstSeq !== args.firstSeq)
        return { rounds: [], stopped: { calls: live.waitingOn.map(() => ({ unsettled: 'not sent' })) } };
      ahead.attempt.cancel(new Error('the job was cancelled'));
      const ends = await ahead.ends;
      await Promise.all(ends.flatMap((end) => ('result' in end && end.recorded ? [end.recorded] : [])));
      return { rounds: [], stopped: await stopped(ends) };
    }

    async function runRounds(): Promise<RunRoundResult> {
      const rounds: FusedRound[] = [];
      const started = performance.now();
      let seq = args.firstSeq;
      for (;;) {
        const ends = await callsOf(live.waitingOn, seq);
        const recorded = Promise.all(ends.flatMap((end) => ('result' in end && end.recorded ? [end.recorded] : [])));
        const results = ends.flatMap((end) => ('result' in end ? [end.result] : []));
        if (results.length < ends.length) {
          await recorded.catch((e: unknown) => dropSession(e));
          // Not delivered: the session waits, live, for the workflow to settle the round (unless the job is over).
          if (attempt.jobCancelled) session.dispose();
          else sessions.add(args.sessionId, session, live.waitingOn);
          return { rounds, stopped: await stopped(ends) };
        }
        // The sandbox's turn overlaps the outcomes' records. Only the sandbox sees the outcomes before
        // their records are in: its next calls and this activity's result wait for them, and an
        // outcome not kept (another attempt's was) drops it.
        const [records, turn] = await Promise.allSettled([
          recorded,
          turnOn(results).then(async (taken) => ({
            ...taken,
            report: await deps.plan(args.sessionId, session, taken.prepared, args.privacyOwner),
          })),
        ]);
        if (records.status === 'rejected') dropSession(records.reason);
        if (turn.status === 'rejected') throw turn.reason;
        const { outcomes, now, report } = turn.value;
        rounds.push({
          outcomes,
          uncertain: results.flatMap((r, i) => (r.uncertain ? [i] : [])),
          now,
          report,
        });
        seq += live.waitingOn.length;
        const batch = args.batch;
        if (
          !batch ||
          report.outcome ||
          attempt.signal.aborted ||
          !batchable(report.effects, batch.providers) ||
          seq - args.firstSeq >= batch.flush.calls ||
          performance.now() - started >= batch.flush.ms
        )
          return startAhead(report, seq) ? { rounds, ahead: true } : { rounds };
        live = takeLiveSession(sessions, args.sessionId, session.roundsDelivered);
      }
    }
  };

  async function stopped(ends: CallEnd[]): Promise<NonNullable<RunRoundResult['stopped']>> {
    const retryAfter = ends.flatMap((end) =>
      'retry' in end && end.retry.retryAfterMs ? [end.retry.retryAfterMs] : [],
    );
    const stoppedCalls = await Promise.all(
      ends.map(async (end): Promise<SettledCall> => {
        if ('result' in end) return { ...end.result, outcome: await claims.offloadOutcome(end.result.outcome) };
        return 'retry' in end ? { unsettled: 'retry', failure: end.retry.message } : { unsettled: end.unsettled };
      }),
    );
    return { calls: stoppedCalls, ...(retryAfter.length > 0 ? { retryAfterMs: Math.max(...retryAfter) } : {}) };
  }
}
