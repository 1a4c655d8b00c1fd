/**
 * The activities: everything with a side effect. Three kinds:
 * - openSession (shared task queue): start a sandbox for a job, replaying its journal, and keep it live here;
 * - advanceSession (this worker's own task queue): deliver one round's outcomes to a live session;
 * - callProvider (shared task queue): one API call, retried by Temporal when it fails transiently.
 */
import { randomUUID } from 'node:crypto';
import { ApplicationFailure, cancellationSignal, heartbeat } from '@temporalio/activity';
import type { AdvanceResult, AdvanceSessionArgs, EffectOutcome, HttpEffect, OpenSessionArgs, RoundReport } from '../core/journal.ts';
import { performRequest, TransientHttpError } from '../providers/http-client.ts';
import { ScriptSession } from '../sandbox/session.ts';
import type { ProviderConfig } from '../server/config.ts';
import type { SessionRegistry } from './sessions.ts';

const HEARTBEAT_EVERY_MS = 2_000;

export interface ActivityDeps {
  providers: Record<string, ProviderConfig>;
  sessions: SessionRegistry;
  /** The task queue only this worker process polls; live sessions are reached through it. */
  sessionTaskQueue: string;
}

export interface CallProviderArgs {
  request: HttpEffect;
  idempotencyKey: string;
}

export function createActivities(deps: ActivityDeps) {
  const { sessions, sessionTaskQueue } = deps;
  const providerNames = Object.keys(deps.providers);

  function keep(id: string, session: ScriptSession, report: RoundReport): AdvanceResult {
    if (!session.isEnded) sessions.add(id, session);
    return { ...report, session: { id, taskQueue: sessionTaskQueue } };
  }

  return {
    async openSession(args: OpenSessionArgs): Promise<AdvanceResult> {
      const id = randomUUID();
      const { session, report } = await ScriptSession.open({
        job: args.job,
        providers: providerNames,
        rounds: args.rounds,
        now: args.now,
        onReplayedRound: (k) => heartbeat({ replayedRounds: k + 1 }),
      });
      return keep(id, session, report);
    },

    async advanceSession(args: AdvanceSessionArgs): Promise<AdvanceResult> {
      const session = sessions.take(args.sessionId);
      if (!session || session.roundsDelivered !== args.roundsDelivered) {
        session?.dispose();
        throw ApplicationFailure.nonRetryable(`live session ${args.sessionId} is not on this worker; the job will replay its journal`, 'SessionLost');
      }
      const report = await session.deliver(args.outcomes, args.now);
      return keep(args.sessionId, session, report);
    },

    async callProvider({ request, idempotencyKey }: CallProviderArgs): Promise<EffectOutcome> {
      const provider = deps.providers[request.provider];
      if (!provider) {
        return {
          ok: false,
          error: { name: 'RequestError', message: `unknown provider "${request.provider}"; this worker has: ${providerNames.join(', ') || 'none (check its --config)'}` },
        };
      }
      // Heartbeats let Temporal notice a dead worker within the heartbeat timeout instead of the
      // whole start-to-close timeout, and deliver cancellation to the request.
      const beat = setInterval(() => heartbeat(), HEARTBEAT_EVERY_MS);
      try {
        return await performRequest(provider, request, idempotencyKey, cancellationSignal());
      } catch (e) {
        if (e instanceof TransientHttpError) {
          throw ApplicationFailure.create({
            type: 'TransientHttpError',
            message: e.message,
            details: [{ status: e.status }],
            nextRetryDelay: e.retryAfterMs,
          });
        }
        throw e;
      } finally {
        clearInterval(beat);
      }
    },
  };
}

export type Activities = ReturnType<typeof createActivities>;
