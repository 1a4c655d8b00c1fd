/**
 * The activities: everything with a side effect. Two groups, registered where they run:
 * - shared (the shared task queue, any worker):
 *   - openSession: start a sandbox for a job, replaying its journal, and keep it live here;
 *   - callProvider: one API call, retried by Temporal when it fails transiently;
 *   - saveJournal: store rounds as a journal segment, so they travel by reference;
 * - session (this worker's own task queue): advanceSession, deliver one round's outcomes to a
 *   live session this process holds; closeSession, let go of one while its job waits for a human.
 * Values above the blob threshold cross into workflow history only as references (claim check);
 * an outage of the blob store is waited out, a missing or corrupt blob fails the activity at once.
 */
import { randomUUID } from 'node:crypto';
import { ApplicationFailure, cancellationSignal, heartbeat, log } from '@temporalio/activity';
import { ClaimCheck } from '../blobs/claim-check.ts';
import { BlobCorruptError, BlobMissingError, type BlobStore } from '../blobs/store.ts';
import { effectLabel, privacyOwner } from '../core/effects.ts';
import type { SandboxProvider } from '../core/guest-messages.ts';
import { INTERNAL_FAILURES, productError, type TransientHttpDetails } from '../core/errors.ts';
import type {
  AdvanceResult,
  AdvanceSessionArgs,
  BlobRef,
  EffectOutcome,
  EffectRequest,
  HttpEffect,
  OpenSessionArgs,
  Round,
  RoundReport,
  ToolEffect,
} from '../core/journal.ts';
import type { Privacy } from '../privacy/privacy.ts';
import { PrivacyTokenError } from '../privacy/restore.ts';
import { performRequest, TransientHttpError } from '../providers/http-client.ts';
import { type Adopted, effectKey, ScriptSession } from '../sandbox/session.ts';
import { type HttpProviderConfig, isMcpProvider, type ProviderConfig } from '../providers/config.ts';
import type { UpstreamMcpServers } from '../providers/mcp-client.ts';
import type { RequestValidator } from '../providers/validate.ts';
import { LedgerStore } from '../ledger/store.ts';
import { knownItemsFor } from '../ledger/views.ts';
import { waitingForBlobStore } from './blob-store-waits.ts';
import type { SessionRegistry } from './sessions.ts';

const HEARTBEAT_EVERY_MS = 2_000;

export interface ActivityDeps {
  providers: Record<string, ProviderConfig>;
  /** The providers as sandboxes see them (upstream MCP servers with their tool names). */
  sandboxProviders: SandboxProvider[];
  /** Connections to the upstream MCP servers among the providers. */
  upstream: UpstreamMcpServers;
  sessions: SessionRegistry;
  /** The task queue only this worker process polls; live sessions are reached through it. */
  sessionTaskQueue: string;
  blobs: BlobStore;
  /** Values whose JSON is larger than this go to the blob store. */
  blobThresholdBytes: number;
  /** Per HTTP provider: checks a request against its spec's operations before it is sent. */
  validators?: Record<string, RequestValidator>;
  /** Restores privacy tokens in the requests of jobs started with privacy on (whatever this worker's `enabled`). */
  privacy: Privacy;
}

export interface CallProviderArgs {
  request: HttpEffect | ToolEffect;
  idempotencyKey: string;
  /** A job started with privacy on: its owner, whose vault restores the tokens in the request. */
  privacyOwner?: string;
}

export function createActivities(deps: ActivityDeps) {
  const { sessions, sessionTaskQueue } = deps;
  const providerNames = Object.keys(deps.providers);
  // Every blob store call of an activity waits out an outage of the store, heartbeating.
  const blobs = waitingForBlobStore(deps.blobs, {
    beat: () => heartbeat(),
    signal: () => cancellationSignal(),
    waiting: (e) => {
      log.warn(`${e.message} Waiting for the blob store.`);
    },
    back: (ms) => {
      log.warn(`The blob store ${deps.blobs.location} answers again, after ${(ms / 1000).toFixed(1)} s.`);
    },
  });
  const claims = new ClaimCheck(blobs, deps.blobThresholdBytes);
  const ledgers = new LedgerStore(blobs);

  /**
   * Turns the sandbox's report into what the workflow runs: keyed effects, large values by
   * reference. For a job with privacy on (`owner`), what shows outside the job carries the owner's
   * tokens: logs and progress (queries, the Temporal UI's current details), the calls' labels
   * (activity summaries), approvals' questions and details (the workflow's pending approvals) and
   * the script's error (the failure message). The effects' keys are the sandbox's, of the real values.
   */
  async function plan(
    id: string,
    session: ScriptSession,
    report: RoundReport,
    owner: string | undefined,
    adopted?: Adopted,
  ): Promise<AdvanceResult> {
    if (!session.isEnded) sessions.add(id, session);
    const shown = owner === undefined ? undefined : shownAs(owner);
    const effects = await Promise.all(
      report.effects.map(async (request, i) => {
        const prefilled = adopted?.prefilled[i];
        const label = effectLabel(request);
        return claims.offloadRequest({
          request: shown ? await shown.request(request) : request,
          key: effectKey(request),
          label: shown ? await shown.text(label) : label,
          ...(prefilled ? { prefilled } : {}),
        });
      }),
    );
    const steps = await Promise.all(report.steps.map((s) => claims.offloadStep(s)));
    // each()'s entries go to the blob store (real values, for the operator to fix and feed back);
    // history gets the counts and the first failures, tokenized like the rest with privacy on.
    const { ledger: entries, ...rest } = report;
    const written = entries && (await ledgers.append(session.jobId, session.attempt, session.roundsDelivered, entries));
    const ledger = written && owner !== undefined ? await deps.privacy.tokenize(owner, written) : written;
    const seen = shown ? await shown.report(rest) : rest;
    return { ...seen, effects, steps, session: { id, taskQueue: sessionTaskQueue }, ...(ledger ? { ledger } : {}) };
  }

  /** Tokenizing for `owner` what a round shows outside the job; the sandbox keeps the real values. */
  function shownAs(owner: string) {
    const text = (value: string) => deps.privacy.tokenizeText(owner, value);
    return {
      text,
      request: async (request: EffectRequest): Promise<EffectRequest> =>
        request.kind !== 'approval'
          ? request
          : {
              ...request,
              question: await text(request.question),
              ...(request.details !== undefined
                ? { details: await deps.privacy.tokenize(owner, request.details) }
                : {}),
            },
      report: async (report: RoundReport): Promise<RoundReport> => {
        const { logs, progress, outcome } = report;
        return {
          ...report,
          logs: await Promise.all(logs.map(text)),
          progress: progress?.message ? { ...progress, message: await text(progress.message) } : progress,
          outcome:
            outcome?.kind === 'threw'
              ? { ...outcome, error: await deps.privacy.tokenize(owner, outcome.error, { fieldRules: false }) }
              : outcome,
        };
      },
    };
  }

  async function loadJournal(segments: BlobRef[], rounds: Round[]): Promise<Round[]> {
    const all = [...(await claims.loadRounds(segments)), ...rounds];
    return Promise.all(all.map((r) => claims.resolveRound(r)));
  }

  return {
    shared: {
      openSession: unrecoverableBlobsFail(openSession),
      callProvider: unrecoverableBlobsFail(callProvider),
      saveJournal: (rounds: Round[]): Promise<BlobRef> => heartbeating(() => claims.saveRounds(rounds)),
    },
    session: {
      advanceSession: unrecoverableBlobsFail(advanceSession),
      /** Disposes a live session whose job waits for a human; its next round replays. */
      closeSession: async ({ sessionId }: { sessionId: string }): Promise<void> => sessions.remove(sessionId),
    },
  };

  async function openSession(args: OpenSessionArgs): Promise<AdvanceResult> {
    const id = randomUUID();
    // A resumed job replays the previous attempt's journal in adopt mode; otherwise its own, strictly.
    const stored = args.previous ? await claims.loadRounds(args.previous) : undefined;
    const job = await claims.resolveJob(args.job);
    const { session, report, adopted } = await heartbeating(async () =>
      ScriptSession.open({
        job,
        providers: deps.sandboxProviders,
        rounds: stored
          ? await Promise.all(stored.map((r) => claims.resolveRound(r)))
          : await loadJournal(args.journal.segments, args.journal.rounds),
        now: args.now,
        mode: stored ? 'adopt' : 'strict',
        onReplayedRound: (k) => heartbeat({ replayedRounds: k + 1 }),
        // A resumed attempt skips the each() items earlier attempts did, whatever its code looks like.
        ...(args.job.attempt > 1 ? { known: await knownItemsFor(blobs, args.job.jobId, args.job.attempt) } : {}),
      }),
    );
    const result = await plan(id, session, report, privacyOwner(args.job), adopted);
    if (!stored || !adopted) return result;
    const kept = stored.slice(0, adopted.rounds);
    return {
      ...result,
      adoption: {
        journal: kept.length > 0 ? [await claims.saveRounds(kept)] : [],
        rounds: kept.length,
        effects: kept.reduce((n, r) => n + r.effects.length, 0),
        divergence: adopted.divergence,
      },
    };
  }

  async function advanceSession(args: AdvanceSessionArgs): Promise<AdvanceResult> {
    const session = sessions.take(args.sessionId);
    if (!session || session.roundsDelivered !== args.roundsDelivered) {
      session?.dispose();
      throw ApplicationFailure.nonRetryable(
        `live session ${args.sessionId} is not on this worker; the job will replay its journal`,
        INTERNAL_FAILURES.SessionLost,
      );
    }
    const outcomes = await Promise.all(args.outcomes.map((o) => claims.resolveOutcome(o)));
    const report = await heartbeating(() => session.deliver(outcomes, args.now));
    return plan(args.sessionId, session, report, args.privacyOwner);
  }

  async function callProvider({ request, idempotencyKey, privacyOwner }: CallProviderArgs): Promise<EffectOutcome> {
    const provider = deps.providers[request.provider];
    if (!provider) {
      return {
        ok: false,
        error: productError(
          'RequestError',
          `unknown provider "${request.provider}"; this worker has: ${providerNames.join(', ') || 'none (check its --config)'}`,
        ),
      };
    }
    if ((request.kind === 'tool') !== isMcpProvider(provider)) {
      return {
        ok: false,
        error: productError(
          'RequestError',
          `provider "${request.provider}" is ${isMcpProvider(provider) ? 'an MCP server: call its tools' : 'an HTTP API: use request()'}`,
        ),
      };
    }
    const invalid = request.kind === 'http' ? deps.validators?.[request.provider]?.check(request) : undefined;
    if (invalid) return { ok: false, error: productError('RequestError', invalid) };
    let outgoing: HttpEffect | ToolEffect =
      request.kind === 'http' ? { ...request, body: await claims.resolveBody(request.body, request.bodyRef) } : request;
    if (privacyOwner !== undefined) {
      try {
        outgoing = await deps.privacy.restore(privacyOwner, outgoing, effectLabel(request));
      } catch (e) {
        if (e instanceof PrivacyTokenError) return { ok: false, error: productError(e.name, e.message) };
        throw e;
      }
    }
    try {
      const outcome = await heartbeating(() =>
        outgoing.kind === 'tool'
          ? deps.upstream.call(outgoing.provider, outgoing.tool, outgoing.args, cancellationSignal())
          : performRequest(provider as HttpProviderConfig, outgoing, idempotencyKey, cancellationSignal()),
      );
      return await claims.offloadOutcome(outcome);
    } catch (e) {
      if (e instanceof TransientHttpError) {
        const details: TransientHttpDetails = { status: e.status };
        throw ApplicationFailure.create({
          type: INTERNAL_FAILURES.TransientHttpError,
          message: e.message,
          details: [details],
          // Retry-After: 0 means "now"; a zero delay would end retrying, so leave it to the policy.
          nextRetryDelay: e.retryAfterMs || undefined,
        });
      }
      throw e;
    }
  }
}

/**
 * Heartbeats while `work` runs, so Temporal notices a dead worker within the heartbeat timeout
 * instead of the whole start-to-close timeout, and cancellation reaches the activity.
 */
async function heartbeating<T>(work: () => Promise<T>): Promise<T> {
  const beat = setInterval(() => heartbeat(), HEARTBEAT_EVERY_MS);
  try {
    return await work();
  } finally {
    clearInterval(beat);
  }
}

/** A missing or corrupt blob will not heal by retrying: fail at once, with the reference in the message. */
function unrecoverableBlobsFail<A extends unknown[], R>(
  activity: (...args: A) => Promise<R>,
): (...args: A) => Promise<R> {
  return async (...args) => {
    try {
      return await activity(...args);
    } catch (e) {
      if (e instanceof BlobMissingError || e instanceof BlobCorruptError)
        throw ApplicationFailure.nonRetryable(e.message, e.name);
      throw e;
    }
  };
}

export type ActivityGroups = ReturnType<typeof createActivities>;
/** The activities any worker runs, from the shared task queue. */
export type SharedActivities = ActivityGroups['shared'];
/** The activities only the worker holding a live session runs, from its own task queue. */
export type SessionActivities = ActivityGroups['session'];
