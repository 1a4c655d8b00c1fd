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
import { INTERNAL_FAILURES } from '../../core/errors.ts';
import type {
  AdvanceResult,
  AdvanceSessionArgs,
  BlobRef,
  EffectOutcome,
  EffectRequest,
  Json,
  OpenSessionArgs,
  Round,
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
  /** advanceSession loses the session (fails as SessionLost) when asked to deliver this round (1-based), once. */
  loseSessionAtRound?: number;
  /** callProvider's answer (default: `{ ok: true, value: { seq } }`); may throw to fail the activity. */
  callProvider?: (args: CallProviderArgs) => Promise<EffectOutcome>;
  /** openSession's failure, thrown on every attempt (e.g. a missing blob). */
  openSessionError?: () => Error;
}

export interface FakeCalls {
  openSession: OpenSessionArgs[];
  advanceSession: AdvanceSessionArgs[];
  callProvider: CallProviderArgs[];
  saveJournal: Round[][];
}

export function fakeActivities(script: FakeScript, options: FakeOptions) {
  const calls: FakeCalls = { openSession: [], advanceSession: [], callProvider: [], saveJournal: [] };
  const segments = new Map<string, Round[]>();
  /** Live sessions: id → rounds delivered so far. */
  const live = new Map<string, number>();
  let lost = false;

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
      if (options.openSessionError) throw options.openSessionError();
      const replayed = args.journal.segments.flatMap((ref) => segments.get(ref.blob) ?? []).length;
      const id = `session-${calls.openSession.length}`;
      const delivered = replayed + args.journal.rounds.length;
      live.set(id, delivered);
      return report(id, delivered);
    },
    async callProvider(args) {
      calls.callProvider.push(args);
      if (options.callProvider) return options.callProvider(args);
      return { ok: true, value: { seq: Number(args.idempotencyKey.split(':')[1]) } };
    },
    async saveJournal(rounds): Promise<BlobRef> {
      calls.saveJournal.push(rounds);
      const blob = `segment-${calls.saveJournal.length}`;
      segments.set(blob, rounds);
      return { blob, bytes: JSON.stringify(rounds).length };
    },
  };

  const session: SessionActivities = {
    async advanceSession(args) {
      calls.advanceSession.push(args);
      const delivered = live.get(args.sessionId);
      const round = args.roundsDelivered + 1;
      if (delivered !== args.roundsDelivered || (round === options.loseSessionAtRound && !lost)) {
        lost = true;
        live.delete(args.sessionId);
        throw ApplicationFailure.nonRetryable(`session ${args.sessionId} is gone`, INTERNAL_FAILURES.SessionLost);
      }
      live.set(args.sessionId, round);
      return report(args.sessionId, round);
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
