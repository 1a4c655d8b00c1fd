/**
 * Stub activities for testing the durableScript workflow alone: a fake sandbox that plays a fixed
 * script (a list of rounds, each the effects it waits on, then a return value), fake API calls and
 * an in-memory journal store. Every call is recorded so tests can check what the workflow asked for.
 *
 * The fake keeps the real session contract: a session opened with a journal of k rounds resumes
 * after them (as a replay would), and a round delivered out of order loses the session.
 */
import { ApplicationFailure } from '@temporalio/activity';
import type { SessionActivities, SharedActivities } from '../../activities/index.ts';
import type { CallProviderArgs } from '../../activities/index.ts';
import { effectLabel } from '../../core/effects.ts';
import { INTERNAL_FAILURES, transientHttpStatus } from '../../core/errors.ts';
import type {
  AdvanceResult,
  AdvanceSessionArgs,
  BlobRef,
  EffectOutcome,
  EffectRequest,
  FusedRound,
  Json,
  MakeCallArgs,
  OpenSessionArgs,
  Round,
  RunRoundArgs,
  RunRoundHereArgs,
  SettledCall,
} from '../../core/journal.ts';

export interface FakeScript {
  /** The effects each round waits on, in order. */
  rounds: EffectRequest[][];
  /** What the script returns after the last round. */
  result: Json;
}

export interface FakeOptions {
  /** The task queue the fake says its live sessions are on (the session worker's). */
  sessionTaskQueue: string;
  /** advanceSession or runRound loses the session (fails as SessionLost) when asked for this round (1-based), once. */
  loseSessionAtRound?: number;
  /**
   * The API's answer to a call, wherever it is made (callProvider, makeCall, runRound); default
   * `{ ok: true, value: { seq } }`. It may throw, e.g. a transient failure: per-call activities fail
   * with it; a fused round stops before delivery.
   */
  callProvider?: (args: CallProviderArgs) => Promise<EffectOutcome>;
  /** openSession's failure, thrown on every attempt (e.g. a missing blob). */
  openSessionError?: () => Error;
  /** Sessions already live on the fake worker (id → rounds delivered), as a run continued from an earlier release finds them. */
  liveSessions?: Record<string, number>;
  /** runRound reports the first call of this round (1-based) as uncertain. */
  uncertainAtRound?: number;
  /** The worker running the job's workflow tasks holds none of its sessions: runRoundHere declines every round. */
  heldElsewhere?: boolean;
}

export interface FakeCalls {
  openSession: OpenSessionArgs[];
  advanceSession: AdvanceSessionArgs[];
  runRound: RunRoundArgs[];
  runRoundHere: RunRoundHereArgs[];
  /** Every call the API got, from whichever activity. */
  callProvider: CallProviderArgs[];
  makeCall: MakeCallArgs[];
  saveJournal: Round[][];
  forgetCalls: string[];
}

export function fakeActivities(script: FakeScript, options: FakeOptions) {
  const calls: FakeCalls = {
    openSession: [],
    advanceSession: [],
    runRound: [],
    runRoundHere: [],
    callProvider: [],
    makeCall: [],
    saveJournal: [],
    forgetCalls: [],
  };
  const segments = new Map<string, Round[]>();
  /** Live sessions: id → rounds delivered so far. */
  const live = new Map<string, number>(Object.entries(options.liveSessions ?? {}));
  let lost = false;
  let jobId = '';

  function report(sessionId: string, delivered: number): AdvanceResult {
    const done = delivered >= script.rounds.length;
    const effects = done ? [] : script.rounds[delivered];
    return {
      effects: effects.map((request, i) => ({ request, key: `key-${delivered}-${i}`, label: effectLabel(request) })),
      steps: [],
      logs: [`round ${delivered + 1}`],
      droppedLogs: 0,
      progress: { done: delivered, total: script.rounds.length, message: null },
      outcome: done ? { kind: 'returned', value: script.result } : null,
      session: { id: sessionId, taskQueue: options.sessionTaskQueue },
    };
  }

  const shared: SharedActivities = {
    async openSession(args) {
      calls.openSession.push(args);
      jobId = args.job.jobId;
      if (options.openSessionError) throw options.openSessionError();
      const replayed = args.journal.segments.flatMap((ref) => segments.get(ref.blob) ?? []).length;
      const id = `session-${calls.openSession.length}`;
      const delivered = replayed + args.journal.rounds.length;
      live.set(id, delivered);
      return report(id, delivered);
    },
    callProvider: api,
    async makeCall(args) {
      calls.makeCall.push(args);
      const end = await counted(args, args.retry.maximumAttempts);
      if ('failure' in end) throw end.failure;
      return { outcome: end.outcome };
    },
    async forgetCalls(jobId) {
      calls.forgetCalls.push(jobId);
    },
    async saveJournal(rounds): Promise<BlobRef> {
      calls.saveJournal.push(rounds);
      const blob = `segment-${calls.saveJournal.length}`;
      segments.set(blob, rounds);
      return { blob, bytes: JSON.stringify(rounds).length };
    },
    async runRoundHere({ sessionTaskQueue, ...args }) {
      calls.runRoundHere.push({ sessionTaskQueue, ...args });
      if (options.heldElsewhere || sessionTaskQueue !== options.sessionTaskQueue)
        throw ApplicationFailure.nonRetryable(
          `session ${args.sessionId} is elsewhere`,
          INTERNAL_FAILURES.SessionElsewhere,
        );
      return session.runRound(args);
    },
    previewResume() {
      throw new Error('the job workflow never previews a resume');
    },
  };

  async function api(args: CallProviderArgs): Promise<EffectOutcome> {
    calls.callProvider.push(args);
    if (options.callProvider) return options.callProvider(args);
    return { ok: true, value: { seq: Number(args.idempotencyKey.split(':')[1]) } };
  }

  /** API failures per idempotency key, as the call records count them: at the limit, the outcome is a final ApiError. */
  const apiFailures = new Map<string, number>();
  async function counted(
    args: CallProviderArgs,
    maximumAttempts: number,
  ): Promise<{ outcome: EffectOutcome } | { failure: unknown }> {
    try {
      return { outcome: await api(args) };
    } catch (failure) {
      const failures = (apiFailures.get(args.idempotencyKey) ?? 0) + 1;
      apiFailures.set(args.idempotencyKey, failures);
      if (failures < maximumAttempts) return { failure };
      const status = failure instanceof ApplicationFailure ? transientHttpStatus(failure.details) : undefined;
      const message = `${effectLabel(args.request)} failed after ${failures} attempt(s): ${(failure as Error).message}`;
      return { outcome: { ok: false, error: { name: 'ApiError', message, ...(status ? { status } : {}) } } };
    }
  }

  /** The session, if it is live at `roundsDelivered`; else it is lost (as SessionLost). */
  function takeSession(sessionId: string, roundsDelivered: number): void {
    const round = roundsDelivered + 1;
    if (live.get(sessionId) !== roundsDelivered || (round === options.loseSessionAtRound && !lost)) {
      lost = true;
      live.delete(sessionId);
      throw ApplicationFailure.nonRetryable(`session ${sessionId} is gone`, INTERNAL_FAILURES.SessionLost);
    }
  }

  const session: SessionActivities = {
    async advanceSession(args) {
      calls.advanceSession.push(args);
      takeSession(args.sessionId, args.roundsDelivered);
      live.set(args.sessionId, args.roundsDelivered + 1);
      return report(args.sessionId, args.roundsDelivered + 1);
    },
    async runRound(args) {
      calls.runRound.push(args);
      takeSession(args.sessionId, args.roundsDelivered);
      const rounds: FusedRound[] = [];
      let delivered = args.roundsDelivered;
      let seq = args.firstSeq;
      for (;;) {
        const effects = script.rounds[delivered];
        const ended = await Promise.all(
          effects.map((request, i): Promise<{ outcome: EffectOutcome } | { failure: unknown }> =>
            request.kind === 'http' || request.kind === 'tool'
              ? counted(
                  { request, idempotencyKey: `${jobId}:${seq + i}:key-${delivered}-${i}` },
                  args.maximumAttempts[request.provider] ?? 1,
                )
              : Promise.resolve({ outcome: { ok: true } }),
          ),
        );
        if (ended.some((e) => 'failure' in e)) {
          return {
            rounds,
            stopped: {
              calls: ended.map((e): SettledCall =>
                'outcome' in e ? { outcome: e.outcome } : { unsettled: 'retry', failure: (e.failure as Error).message },
              ),
            },
          };
        }
        delivered++;
        seq += effects.length;
        live.set(args.sessionId, delivered);
        const next = report(args.sessionId, delivered);
        rounds.push({
          outcomes: ended.map((e) => (e as { outcome: EffectOutcome }).outcome),
          uncertain: delivered === options.uncertainAtRound ? [0] : [],
          now: Date.now(),
          report: next,
        });
        const batchable = next.effects.length > 0 && next.effects.every((e) => e.request.kind === 'http');
        if (!args.batch || next.outcome || !batchable || seq - args.firstSeq >= args.batch.flush.calls)
          return { rounds };
      }
    },
    async closeSession({ sessionId }) {
      live.delete(sessionId);
    },
  };

  return { shared, session, calls };
}

export const http = (path: string): EffectRequest => ({ kind: 'http', provider: 'crm', method: 'GET', path });
export const sleep = (ms: number): EffectRequest => ({ kind: 'sleep', ms });
export const checkpoint = (state: Json): EffectRequest => ({ kind: 'checkpoint', state });
