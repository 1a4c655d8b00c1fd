/**
 * The activities: everything with a side effect. Two groups, registered where they run:
 * - shared (the shared task queue, any worker):
 *   - openSession: start a sandbox for a job, replaying its journal, and keep it live here;
 *   - makeCall: one API or tool call, exactly once as far as the records allow (calls.ts); its
 *     transient API failures are retried by Temporal, infrastructure failures without limit;
 *   - callProvider: the same call as jobs started by v0.1.0 schedule it;
 *   - saveJournal: store rounds as a journal segment, so they travel by reference;
 *   - forgetCalls: mark a completed job ended, and delete its call records after (run as a local
 *     activity, on the worker of the workflow task);
 *   - previewResume: what job_resume would do, sending nothing but reads (preview.ts);
 *   - runRoundHere: runRound, offered to the worker that ran the workflow task (eager dispatch),
 *     declined at once when another worker holds the session, or failed as a lost session when
 *     that worker's mark says it is dead (worker-mark.ts);
 * - session (this worker's own task queue), for a live session this process holds:
 *   - runRound: make the round's calls and deliver their outcomes (a fused round, rounds.ts);
 *   - advanceSession: deliver outcomes the workflow obtained itself;
 *   - closeSession: let go of one while its job waits for a human.
 * Values above the blob threshold cross into workflow history only as references (claim check);
 * an outage of the blob store is waited out, a missing or corrupt blob fails the activity at once.
 */
import { randomUUID } from 'node:crypto';
import {
  ApplicationFailure,
  CancelledFailure,
  cancellationSignal,
  Context,
  heartbeat,
  log,
} from '@temporalio/activity';
import { ClaimCheck } from '../blobs/claim-check.ts';
import { BlobCorruptError, BlobMissingError, type BlobStore } from '../blobs/store.ts';
import { ruleIndexFor } from '../core/approval-policy.ts';
import type { JobApprovalSettings } from '../core/approvals.ts';
import { effectLabel, privacyOwner } from '../core/effects.ts';
import type { SandboxProvider } from '../core/guest-messages.ts';
import { INTERNAL_FAILURES, type TransientHttpDetails } from '../core/errors.ts';
import type {
  AdvanceResult,
  AdvanceSessionArgs,
  BlobRef,
  CallResult,
  EffectOutcome,
  EffectRequest,
  HttpEffect,
  MakeCallArgs,
  OpenSessionArgs,
  PlannedEffect,
  ReplayRound,
  Round,
  RoundReport,
  RetrySettings,
  RunRoundArgs,
  RunRoundHereArgs,
  RunRoundResult,
  ToolEffect,
  UnsettledDetails,
} from '../core/journal.ts';
import { SESSION_PICKUP_TIMEOUT_MS } from '../core/timeouts.ts';
import type { Privacy } from '../privacy/privacy.ts';
import type { JobProvenance } from '../privacy/public-values.ts';
import { type Adopted, effectKey, ScriptSession } from '../sandbox/session.ts';
import type { ProviderConfig } from '../providers/config.ts';
import type { UpstreamMcpServers } from '../providers/mcp-client.ts';
import type { RequestValidator } from '../providers/validate.ts';
import { LedgerStore } from '../ledger/store.ts';
import { knownItemsFor } from '../ledger/views.ts';
import { ActivityAttempt, assertNotExpired } from './attempt.ts';
import { waitingForBlobStore } from './blob-store-waits.ts';
import { Calls, type CallEnd } from './calls.ts';
import { createPreviewResume } from './preview.ts';
import { createRunRound, takeLiveSession } from './rounds.ts';
import type { PreparedReport, SessionRegistry } from './sessions.ts';
import { lastSignOf, WORKER_MARK_STALE_MS } from './worker-mark.ts';

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
  /**
   * Told each time an activity is through with a round, and whether the round moved large values
   * (sandbox/session.ts LARGE_ROUND_CHARS): the process collects its garbage when that pays
   * (cli/process-memory.ts); without it V8 collects when it will.
   */
  afterRound?: (large: boolean) => void;
}

/** What jobs started by v0.1.0 pass to callProvider. */
export interface CallProviderArgs {
  request: HttpEffect | ToolEffect;
  idempotencyKey: string;
  /** A job started with privacy on: its owner, whose vault restores the tokens in the request. */
  privacyOwner?: string;
}

export function createActivities(deps: ActivityDeps) {
  const { sessions, sessionTaskQueue } = deps;
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
  /**
   * What plan() needs to know of each live session's job: its approval rules by provider (what the
   * policy will hold), and with public providers, where its personal data came from.
   */
  const jobOf = new WeakMap<
    ScriptSession,
    { approvalRules: JobApprovalSettings['rules']; provenance?: JobProvenance }
  >();
  const ledgers = new LedgerStore(blobs);
  const calls = new Calls({
    providers: deps.providers,
    upstream: deps.upstream,
    validators: deps.validators,
    store: blobs,
    claims,
    privacy: deps.privacy,
    workerId: sessionTaskQueue,
    holdsSessions: () => sessions.holding,
  });

  /**
   * What of a report goes to history before anything about its session changes: its effects keyed
   * and labelled and, for a job without privacy, their large bodies by reference; its steps, large
   * ones by reference. Nothing but content-addressed blob writes, so the sandbox's turn ahead of its
   * round may take it too (ahead.ts); plan() then registers and tokenizes.
   */
  async function prepare(report: RoundReport, owner: string | undefined, adopted?: Adopted): Promise<PreparedReport> {
    const waitingOn = report.effects.map((request, i) => {
      const prefilled = adopted?.prefilled[i];
      return { request, key: effectKey(request), label: effectLabel(request), ...(prefilled ? { prefilled } : {}) };
    });
    const [steps, effects] = await Promise.all([
      Promise.all(report.steps.map((s) => claims.offloadStep(s))),
      owner === undefined ? Promise.all(waitingOn.map((effect) => claims.offloadRequest(effect))) : undefined,
    ]);
    return { report, waitingOn, steps, ...(effects ? { effects } : {}) };
  }

  /**
   * Keeps the session live (unless its script ended) with the effects its report waits on, and turns
   * the report into what the workflow runs: keyed effects, large values by reference. For a job with
   * privacy on (`owner`), what shows outside the job carries the owner's tokens: logs and progress
   * (queries, the Temporal UI's current details), the calls' labels (activity summaries), approvals'
   * questions and details (the workflow's pending approvals) and the script's error (the failure
   * message); the live session keeps the real values. The effects' keys are the sandbox's, of the
   * real values.
   */
  async function plan(
    id: string,
    session: ScriptSession,
    prepared: PreparedReport,
    owner: string | undefined,
  ): Promise<AdvanceResult> {
    const { report, waitingOn, steps } = prepared;
    if (!session.isEnded) {
      sessions.add(id, session, waitingOn);
      calls.holdingSession();
    }
    const job = jobOf.get(session);
    // The job's public values: saved before the report returns, so answers about the job find them.
    const publicValues = job?.provenance?.changed();
    if (publicValues) await deps.privacy.publicValues.save(session.jobId, publicValues);
    const asIs = job?.provenance?.values;
    const shown = owner === undefined ? undefined : shownAs(owner, asIs);
    const effects = shown
      ? await Promise.all(
          waitingOn.map(async (effect) => {
            const held = await shown.held(job?.approvalRules ?? {}, effect.request);
            return claims.offloadRequest({
              ...effect,
              request: await shown.request(effect.request),
              label: await shown.text(effect.label),
              ...(held ? { shown: held } : {}),
            });
          }),
        )
      : prepared.effects;
    if (!effects) throw new Error(`internal: the report of ${session.jobId} was prepared for another privacy owner`);
    // each()'s entries go to the blob store (real values, for the operator to fix and feed back);
    // history gets the counts and the first failures, tokenized like the rest with privacy on.
    const { ledger: entries, ...rest } = report;
    const written = entries && (await ledgers.append(session.jobId, session.attempt, session.roundsDelivered, entries));
    const ledger = written && owner !== undefined ? await deps.privacy.tokenize(owner, written, { asIs }) : written;
    const seen = shown ? await shown.report(rest) : rest;
    return { ...seen, effects, steps, session: { id, taskQueue: sessionTaskQueue }, ...(ledger ? { ledger } : {}) };
  }

  /**
   * Tokenizing for `owner` what a round shows outside the job; the sandbox keeps the real values.
   * `asIs`: the job's public values, shown as they are unless the owner holds a token for them.
   */
  function shownAs(owner: string, asIs: Set<string> | undefined) {
    const text = (value: string) => deps.privacy.tokenizeText(owner, value, asIs);
    return {
      text,
      request: async (request: EffectRequest): Promise<EffectRequest> =>
        request.kind !== 'approval'
          ? request
          : {
              ...request,
              question: await text(request.question),
              ...(request.details !== undefined
                ? { details: await deps.privacy.tokenize(owner, request.details, { asIs }) }
                : {}),
            },
      /**
       * A call the job's approval policy names, tokenized for the approver when it holds personal
       * data (the job's state shows it while the call is held); undefined otherwise. A large body
       * goes to the blob store like the request's own.
       */
      held: async (
        approvalRules: JobApprovalSettings['rules'],
        request: EffectRequest,
      ): Promise<PlannedEffect['shown']> => {
        if ((request.kind !== 'http' && request.kind !== 'tool') || !policyHolds(approvalRules, request))
          return undefined;
        const tokenized = await deps.privacy.tokenize(owner, request, { asIs });
        if (tokenized === request) return undefined;
        const { request: offloaded } = await claims.offloadRequest({ key: '', label: '', request: tokenized });
        return offloaded as PlannedEffect['shown'];
      },
      report: async (report: RoundReport): Promise<RoundReport> => {
        const { logs, progress, outcome } = report;
        return {
          ...report,
          logs: await Promise.all(logs.map(text)),
          progress: progress?.message ? { ...progress, message: await text(progress.message) } : progress,
          outcome:
            outcome?.kind === 'threw'
              ? { ...outcome, error: await deps.privacy.tokenize(owner, outcome.error, { fieldRules: false, asIs }) }
              : outcome,
        };
      },
    };
  }

  /** Tells the process that an activity is through with `session`'s rounds (its garbage may be collected). */
  function collectAfter(session: ScriptSession): void {
    deps.afterRound?.(session.takeLargeRound());
  }

  /** Whether the approval policy of `session`'s job names the call (a session of unknown job: as if it did). */
  function heldByPolicy(session: ScriptSession, request: HttpEffect | ToolEffect): boolean {
    const job = jobOf.get(session);
    return !job || policyHolds(job.approvalRules, request);
  }

  async function loadJournal(segments: BlobRef[], rounds: Round[]): Promise<ReplayRound[]> {
    const all = [...(await claims.loadRounds(segments)), ...rounds];
    return Promise.all(all.map((r) => claims.resolveRound(r)));
  }

  /** Every round that runs a sandbox takes one of the worker's session slots (waiting, heartbeating, if none is free). */
  function inSlot<A, R>(sessionOf: (args: A) => string | undefined, activity: (args: A) => Promise<R>) {
    return (args: A) =>
      sessions.withSlot(
        sessionOf(args),
        () => activity(args),
        () => heartbeat(),
      );
  }
  const runRoundInSlot = inSlot(
    (args: RunRoundArgs) => args.sessionId,
    createRunRound({ sessions, calls, claims, prepare, plan, collectAfter, heldByPolicy }),
  );
  const runRound = unrecoverableBlobsFail((args: RunRoundArgs) => {
    // A fresh round looks for no records, so it must be sure Temporal still waits for this attempt.
    if (args.fresh) assertNotExpired(SESSION_PICKUP_TIMEOUT_MS);
    return runRoundInSlot(args);
  });

  return {
    shared: {
      openSession: unrecoverableBlobsFail(inSlot(() => undefined, openSession)),
      makeCall: unrecoverableBlobsFail(makeCall),
      callProvider: unrecoverableBlobsFail(callProvider),
      saveJournal: (rounds: Round[]): Promise<BlobRef> => heartbeating(() => claims.saveRounds(rounds)),
      forgetCalls: async (jobId: string, jobAttempt: number): Promise<void> => {
        // Kept for the deletion, which outlives the activity (the job's end does not wait for it).
        const activityLog = Context.current().log;
        await calls.forgetJob(
          jobId,
          jobAttempt,
          (e) => {
            activityLog.warn(`${(e as Error).message} The call records of ${jobId} stay in the blob store.`);
          },
          deps.blobs,
        );
      },
      runRoundHere: async ({ sessionTaskQueue: holder, ...args }: RunRoundHereArgs): Promise<RunRoundResult> => {
        if (holder !== sessionTaskQueue) {
          // A holder whose mark has gone stale is dead or frozen: the job replays now instead of
          // waiting out the round's pickup timeout on the holder's queue. Unknown (no mark, or the
          // store does not answer now): the round goes to the holder's queue, as it always may.
          const lastSign = await lastSignOf(deps.blobs, holder).catch(() => undefined);
          if (lastSign !== undefined && Date.now() - lastSign > WORKER_MARK_STALE_MS)
            throw ApplicationFailure.nonRetryable(
              `live session ${args.sessionId} was on the worker polling ${holder}, which has given no sign of life for ${((Date.now() - lastSign) / 1000).toFixed(1)} s; the job will replay its journal`,
              INTERNAL_FAILURES.SessionLost,
            );
          throw ApplicationFailure.nonRetryable(
            `live session ${args.sessionId} is on the worker polling ${holder}; the round goes there`,
            INTERNAL_FAILURES.SessionElsewhere,
          );
        }
        return runRound(args);
      },
      previewResume: unrecoverableBlobsFail(
        createPreviewResume({ claims, blobs, calls, providers: deps.sandboxProviders, privacy: deps.privacy }),
      ),
    },
    session: {
      runRound,
      advanceSession: unrecoverableBlobsFail(inSlot((args: AdvanceSessionArgs) => args.sessionId, advanceSession)),
      /** Disposes a live session whose job waits for a human; its next round replays. */
      closeSession: async ({ sessionId }: { sessionId: string }): Promise<void> => sessions.remove(sessionId),
    },
    close: () => calls.close(),
  };

  async function openSession(args: OpenSessionArgs): Promise<AdvanceResult> {
    const id = randomUUID();
    // A resumed job replays the previous attempt's journal in adopt mode; otherwise its own, strictly.
    const stored = args.previous ? await claims.loadRounds(args.previous) : undefined;
    const job = await claims.resolveJob(args.job);
    const provenance =
      privacyOwner(args.job) !== undefined && deps.privacy.hasPublicProviders ? deps.privacy.provenance() : undefined;
    const { session, report, adopted } = await heartbeating(async () =>
      ScriptSession.open({
        job,
        ...(provenance ? { onDelivered: (requests, outcomes) => provenance.observe(requests, outcomes) } : {}),
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
    jobOf.set(session, { approvalRules: job.approvals?.rules ?? {}, ...(provenance ? { provenance } : {}) });
    const owner = privacyOwner(args.job);
    const result = await plan(id, session, await prepare(report, owner, adopted), owner);
    collectAfter(session);
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
    const { session } = takeLiveSession(sessions, args.sessionId, args.roundsDelivered);
    return heartbeating(async () => {
      const outcomes = await Promise.all(args.outcomes.map((o) => claims.resolveOutcome(o)));
      const report = await session.deliver(outcomes, args.now);
      const result = await plan(args.sessionId, session, await prepare(report, args.privacyOwner), args.privacyOwner);
      collectAfter(session);
      return result;
    });
  }

  /**
   * One call, retried by Temporal: a transient API failure after the provider's backoff until its
   * limit (counted in the call's records), an infrastructure failure at once and without limit.
   */
  async function makeCall(args: MakeCallArgs): Promise<CallResult> {
    const attempt = new ActivityAttempt(args.jobAttempt, args.cancelGraceMs);
    const end = await attempt.run(() =>
      calls.call(attempt, {
        jobId: currentJobId(),
        request: args.request,
        idempotencyKey: args.idempotencyKey,
        maximumAttempts: args.retry.maximumAttempts,
        privacyOwner: args.privacyOwner,
      }),
    );
    const result = settled(end, args.retry);
    return { ...result, outcome: await claims.offloadOutcome(result.outcome) };
  }

  /**
   * The call as jobs started by v0.1.0 schedule it: Temporal's retry policy counts every failed
   * attempt, as it did then; cancellation aborts the request at once.
   */
  async function callProvider({ request, idempotencyKey, privacyOwner }: CallProviderArgs): Promise<EffectOutcome> {
    const attempt = new ActivityAttempt(0, 0);
    const end = await attempt.run(() =>
      calls.call(attempt, {
        jobId: currentJobId(),
        request,
        idempotencyKey,
        maximumAttempts: Infinity,
        privacyOwner,
      }),
    );
    return claims.offloadOutcome(settled(end).outcome);
  }
}

/** The job (workflow id) whose activity runs now. */
function currentJobId(): string {
  const execution = Context.current().info.workflowExecution;
  if (!execution) throw new Error('a call activity must be scheduled by a job');
  return execution.workflowId;
}

/**
 * The result of a call that ended, or the failure that makes Temporal retry it (after the
 * provider's backoff, or the API's Retry-After), or reports its cancellation. Without `backoff`
 * (jobs of v0.1.0), Temporal's retry policy spaces the retries.
 */
function settled(end: CallEnd, backoff?: RetrySettings): CallResult {
  if ('result' in end) return end.result;
  if ('unsettled' in end) {
    const details: UnsettledDetails = { unsettled: end.unsettled };
    throw new CancelledFailure(`the job was cancelled; the call ended ${end.unsettled}`, [details]);
  }
  const { message, status, retryAfterMs, failures } = end.retry;
  const details: TransientHttpDetails = { status };
  const delay = backoff
    ? Math.min(backoff.maximumIntervalMs, backoff.initialIntervalMs * backoff.backoffCoefficient ** (failures - 1))
    : 0;
  throw ApplicationFailure.create({
    type: INTERNAL_FAILURES.TransientHttpError,
    message,
    details: [details],
    // Retry-After: 0 means "now"; a zero delay would end retrying, so leave it to the policy.
    nextRetryDelay: Math.max(retryAfterMs ?? 0, delay) || undefined,
  });
}

/**
 * Heartbeats while `work` runs, so Temporal notices a dead worker within the heartbeat timeout
 * instead of the whole start-to-close timeout, and cancellation reaches the activity.
 */
async function heartbeating<T>(work: () => Promise<T>): Promise<T> {
  return new ActivityAttempt(0, 0).run(work);
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

/** Whether a rule of the job's approval policy names the call (as the workflow's Approvals.governs judges it). */
function policyHolds(approvalRules: JobApprovalSettings['rules'], request: HttpEffect | ToolEffect): boolean {
  const rules = approvalRules[request.provider];
  return rules !== undefined && ruleIndexFor(rules, request) >= 0;
}
