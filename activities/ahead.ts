/**
 * Calls ahead: when a fused round ends and the sandbox's next report asks only for calls, the
 * round's activity starts them before it returns. They then run while Temporal journals the round
 * (the completion, a workflow task, the next activity's dispatch) instead of after it, and the next
 * round's activity, on this worker (it holds the session), takes them up instead of sending them.
 *
 * Why this repeats nothing and loses nothing: each call takes the one exactly-once path
 * (activities/calls.ts: an intent record before it is sent, an outcome record after, the
 * Idempotency-Key of its place in the job), so an attempt elsewhere (this worker lost, the session
 * replayed) finds their records as it finds those of a round a lost worker was making, and the
 * workflow still journals every outcome from the next round's activity.
 *
 * Only what the workflow will run next as a fused round goes ahead: calls and checkpoints only, no
 * call the job's approval policy holds (the workflow would wait for a human first), within the
 * job's effect limit, when the script has not ended. They start once the round's own outcome
 * records are in: no call is made from an answer the journal might not keep. A job cancelled
 * before the next round's activity runs collects them (RunRoundArgs.collect), so its status and
 * journal show every call that was sent.
 *
 * Once every call has its answer, the sandbox takes its turn on them (the report of the next round)
 * while Temporal is still busy: the next round's activity finds it made. Nothing leaves the process
 * for it (the report is planned, journaled and acted on by that activity, as when it takes the turn
 * itself), and a session whose next round never comes is dropped as before.
 *
 * The calls are sent once the current activity's completion is on its way (setImmediate): that
 * completion is the round's critical path, the calls have Temporal's whole turn-around.
 */
import type {
  AdvanceResult,
  CallResult,
  EffectOutcome,
  HttpEffect,
  RunRoundArgs,
  ToolEffect,
} from '../core/journal.ts';
import type { DetachedAttempt } from './attempt.ts';
import type { CallEnd } from './calls.ts';
import type { PreparedReport } from './sessions.ts';

/** The sandbox's turn on a round's results: when they were delivered, the report it made (ready for history), and their outcomes as history gets them. */
export interface SandboxTurn {
  now: number;
  prepared: PreparedReport;
  outcomes: EffectOutcome[];
}

/** A round's calls started by the activity of the round before. */
export interface AheadRound {
  /** The job's count of effects before the round: the position of its first call. */
  firstSeq: number;
  /** The rounds the session had been delivered when the calls started (the turn below adds one). */
  roundsDelivered: number;
  attempt: DetachedAttempt;
  ends: Promise<CallEnd[]>;
  /**
   * The sandbox's turn on the calls' results, taken as soon as every call has one; undefined when
   * one has none (a retry due, a call not sent), and then the session has not been delivered.
   */
  turn: Promise<SandboxTurn | undefined>;
  /** Resolves once every call has ended and its outcome record is written (or failed to be); never rejects. */
  settled: Promise<unknown>;
}

/** Starts `calls` ahead under `attempt`, then `turn` on their results: the round the activity that takes them up will find. */
export function callsAhead(
  position: Pick<AheadRound, 'firstSeq' | 'roundsDelivered'>,
  attempt: DetachedAttempt,
  calls: () => Array<Promise<CallEnd>>,
  turn: (results: CallResult[]) => Promise<SandboxTurn>,
): AheadRound {
  const ends = new Promise<void>((resolve) => setImmediate(resolve)).then(() => Promise.all(calls()));
  const results = (all: CallEnd[]) => all.flatMap((end) => ('result' in end ? [end.result] : []));
  const taken = ends.then((all) => (results(all).length === all.length ? turn(results(all)) : undefined));
  // Its failure is thrown by the activity that takes the turn up; nobody may (the session dropped).
  taken.catch(() => undefined);
  // Nobody may take them up (the job cancelled, the session lost): their records hold the outcomes.
  const settled = ends
    .then(
      (all) => Promise.allSettled(all.flatMap((end) => ('result' in end && end.recorded ? [end.recorded] : []))),
      () => undefined,
    )
    .finally(() => attempt.done());
  return { ...position, attempt, ends, turn: taken, settled };
}

/**
 * Whether the round of `report`, whose first call is at `seq`, may start ahead. `held` says whether
 * the job's approval policy names a call, judged on the report as the workflow sees it.
 */
export function mayGoAhead(
  args: RunRoundArgs,
  report: AdvanceResult,
  seq: number,
  held: (request: HttpEffect | ToolEffect) => boolean,
): boolean {
  const { effects } = report;
  return (
    args.ahead !== undefined &&
    !report.outcome &&
    seq + effects.length <= args.ahead.maxEffectsPerJob &&
    effects.some(({ request }) => request.kind === 'http' || request.kind === 'tool') &&
    effects.every(({ request }) =>
      request.kind === 'http' || request.kind === 'tool' ? !held(request) : request.kind === 'checkpoint',
    )
  );
}
