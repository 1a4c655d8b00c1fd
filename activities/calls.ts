/**
 * The one path every API and tool call takes: fused rounds, per-call activities and their retries
 * alike. It makes a write again only when nobody ever saw its response (core/call-records.ts has
 * the records it keeps in the shared blob store):
 *
 * 1. A recorded outcome answers the call without sending it (an ok outcome, or a failure recorded
 *    in the same job attempt: after job_resume, failed calls run again).
 * 2. Before sending a write, the attempt writes its intent (the attempt record). An attempt that
 *    finds a newer attempt's intent is stale and sends nothing; one that finds an older attempt
 *    still sending waits while that attempt's worker is alive (it will record the outcome), and
 *    once it is not (killed or frozen), sends, marking the call uncertain: the one case left, a
 *    worker lost after sending and before any response.
 * 3. Right before the bytes leave, the attempt checks it is still current (activities/attempt.ts).
 * 4. The outcome is recorded before the activity reports completion, so a Temporal restart, a
 *    partition or a kill after the response repeats nothing (a fused round's sandbox may see it
 *    meanwhile, nothing outside the process: see `recordAfter`).
 * 5. Failures the API returned are counted in the attempt record; only they use up the provider's
 *    retry.maximumAttempts, never a timed-out or lost attempt.
 * Reads (GET, HEAD) are sent again freely: they keep no outcome or intent.
 *
 * Cancellation stops calls not yet sent; calls already sent get `cancelGraceMs` to land.
 */
import { setTimeout as delay } from 'node:timers/promises';
import { ApplicationFailure } from '@temporalio/activity';
import type { z } from 'zod';
import type { BlobStore } from '../blobs/store.ts';
import type { ClaimCheck } from '../blobs/claim-check.ts';
import {
  AttemptRecord,
  callRecordNames,
  EndedRecord,
  compareAttempts,
  OutcomeRecord,
  type AttemptToken,
} from '../core/call-records.ts';
import { effectLabel } from '../core/effects.ts';
import { INTERNAL_FAILURES, productError } from '../core/errors.ts';
import type { CallResult, EffectOutcome, HttpEffect, ToolEffect } from '../core/journal.ts';
import { type HttpProviderConfig, isMcpProvider, type ProviderConfig } from '../providers/config.ts';
import { performRequest, TransientHttpError } from '../providers/http-client.ts';
import type { UpstreamMcpServers } from '../providers/mcp-client.ts';
import type { RequestValidator } from '../providers/validate.ts';
import type { Privacy } from '../privacy/privacy.ts';
import { PrivacyTokenError } from '../privacy/restore.ts';
import { type CallAttempt, staleAttempt } from './attempt.ts';
import { lastSignOf, WORKER_MARK_STALE_MS, WorkerMark } from './worker-mark.ts';

/** How often an attempt waiting on an older one looks again. */
const WAIT_POLL_MS = 200;

export interface CallsDeps {
  providers: Record<string, ProviderConfig>;
  upstream: UpstreamMcpServers;
  validators?: Record<string, RequestValidator>;
  store: BlobStore;
  claims: ClaimCheck;
  /** Restores privacy tokens in the requests of jobs started with privacy on. */
  privacy?: Privacy;
  /** This worker process, as attempt records name it. */
  workerId: string;
  /** Whether this worker holds live sessions: its mark stays fresh while it does (worker-mark.ts). */
  holdsSessions?: () => boolean;
}

export interface Call {
  jobId: string;
  request: HttpEffect | ToolEffect;
  idempotencyKey: string;
  /** API failures that end the call as a final ApiError. */
  maximumAttempts: number;
  /** No attempt at this call can have happened before (see RunRoundArgs.fresh): there are no records to look for. */
  fresh?: boolean;
  /** A job started with privacy on: its owner, whose vault restores the tokens in the request. */
  privacyOwner?: string;
  /**
   * Hand a write's result back as soon as the API answers, its outcome record still being written
   * (CallEnd's `recorded`), for a caller that lets nothing leave the process until that settles (a
   * fused round delivers it to the sandbox meanwhile). Otherwise the result comes back recorded.
   */
  recordAfter?: boolean;
}

/** How a call ended: with a result; due for a retry (a transient API failure under the limit); or unsettled by a cancellation. */
export type CallEnd =
  | {
      result: CallResult;
      /**
       * With `recordAfter`: settles once the outcome is recorded. It rejects when the record could not
       * be written, or another attempt recorded a different outcome first: then `result` must not be used.
       */
      recorded?: Promise<void>;
    }
  | { retry: { message: string; status?: number; retryAfterMs?: number; /** API failures so far. */ failures: number } }
  | { unsettled: 'not sent' | 'no answer' };

export function isWrite(request: HttpEffect | ToolEffect): boolean {
  return request.kind === 'tool' || (request.method !== 'GET' && request.method !== 'HEAD');
}

export class Calls {
  private readonly deps: CallsDeps;
  private inFlight = 0;
  /** Completed jobs' call records being deleted (forgetJob). */
  private readonly deletions = new Set<Promise<void>>();
  private readonly mark: WorkerMark;

  constructor(deps: CallsDeps) {
    this.deps = deps;
    this.mark = new WorkerMark(deps.store, deps.workerId, () => this.inFlight > 0 || (deps.holdsSessions?.() ?? false));
  }

  /** This worker now holds a live session: its mark stays fresh while it does. */
  holdingSession(): void {
    this.mark.keepFresh();
  }

  async call(attempt: CallAttempt, call: Call): Promise<CallEnd> {
    const refused = this.refusal(call.request);
    if (refused) return { result: { outcome: refused } };
    const write = isWrite(call.request);
    const names = {
      outcome: callRecordNames.outcome(call.jobId, call.idempotencyKey),
      attempt: callRecordNames.attempt(call.jobId, call.idempotencyKey),
    };
    const look = !call.fresh;
    const [recorded, previous, ended] = await Promise.all([
      look && write ? this.read(OutcomeRecord, names.outcome) : undefined,
      look ? this.read(AttemptRecord, names.attempt) : undefined,
      look && write ? this.read(EndedRecord, callRecordNames.ended(call.jobId)) : undefined,
    ]);
    if (ended && (ended.jobAttempt ?? Infinity) >= attempt.token.job)
      throw staleAttempt('its job has already completed');
    const reusable = usable(recorded, attempt.token);
    if (reusable) return { result: reusable };

    const sameJobAttempt = previous?.attempt.job === attempt.token.job;
    let failures = sameJobAttempt ? previous.apiFailures : 0;
    let lastFailure = sameJobAttempt ? previous.lastFailure : undefined;
    if (failures >= call.maximumAttempts) return this.finalFailure(call, names.outcome, attempt, failures, lastFailure);
    let uncertain = false;
    if (write && previous) {
      if (compareAttempts(previous.attempt, attempt.token) > 0)
        throw staleAttempt('a newer attempt at this call exists');
      const waited = await this.awaitOlder(attempt, call, names, previous);
      if ('result' in waited) return { result: waited.result };
      uncertain = waited.uncertain;
      // each() with reconcile: the script finds out whether it landed rather than have it sent blindly.
      if (uncertain && call.request.onUncertain === 'fail') {
        const outcome: EffectOutcome = {
          ok: false,
          error: productError(
            'UncertainCallError',
            `${effectLabel(call.request)} may have been applied: the worker that sent it was lost before any answer, so it was not sent again`,
          ),
        };
        return { result: await this.recordOutcome(names.outcome, attempt, { outcome }) };
      }
    }

    const record = (state: AttemptRecord['state']): Promise<unknown> =>
      this.writeRecord(names.attempt, {
        attempt: attempt.token,
        worker: this.deps.workerId,
        at: Date.now(),
        state,
        apiFailures: failures,
        ...(lastFailure ? { lastFailure } : {}),
      });
    // The intent, before the bytes leave; then the last check that this attempt is still current.
    if (write) await record('sending');
    try {
      attempt.assertCurrent();
    } catch (e) {
      if (write) await record('not sent');
      throw e;
    }
    if (attempt.signal.aborted) {
      if (write) await record('not sent');
      return { unsettled: 'not sent' };
    }

    let outcome: EffectOutcome;
    try {
      outcome = await this.tracked(() => this.send(call, graceSignal(attempt)));
    } catch (e) {
      if (!(e instanceof TransientHttpError)) {
        if (write) await record('no answer');
        throw e;
      }
      const answered = e.status !== undefined || e.notSent;
      if (attempt.signal.aborted && !answered) {
        if (write) await record('no answer');
        return { unsettled: 'no answer' };
      }
      failures++;
      lastFailure = { message: e.message, ...(e.status !== undefined ? { status: e.status } : {}) };
      // Reads keep the record too: it carries the failure count to the next attempt.
      await record(answered ? 'answered' : 'no answer');
      if (failures >= call.maximumAttempts)
        return this.finalFailure(call, names.outcome, attempt, failures, lastFailure);
      return {
        retry: {
          // History and the Temporal UI show this (the failure, a back-off's summary): the owner's tokens.
          message: await this.shownText(call.privacyOwner, e.message),
          status: e.status,
          failures,
          ...(e.retryAfterMs ? { retryAfterMs: e.retryAfterMs } : {}),
        },
      };
    }
    const result: CallResult = { outcome, ...(uncertain ? { uncertain: true as const } : {}) };
    if (!write) return { result };
    const recording = this.recordOutcome(names.outcome, attempt, result);
    if (!call.recordAfter) return { result: await recording };
    const kept = recording.then((recorded) => {
      if (recorded !== result)
        throw ApplicationFailure.retryable(
          `another attempt recorded the outcome of ${effectLabel(call.request)} first; this attempt's answer is not the call's`,
          INTERNAL_FAILURES.StaleAttempt,
        );
    });
    // Handled here too: a caller that fails before it waits for the record must not crash the worker.
    kept.catch(() => undefined);
    return { result, recorded: kept };
  }

  /**
   * A read for a resume preview (job_resume dry run): sent once, keeping no record (a preview is no
   * attempt of the job); a refused request or an API failure is its outcome, as the script sees it.
   */
  async previewRead(
    request: HttpEffect,
    privacyOwner: string | undefined,
    signal: AbortSignal,
  ): Promise<EffectOutcome> {
    if (isWrite(request)) throw new Error(`a preview never sends ${effectLabel(request)}`);
    const refused = this.refusal(request);
    if (refused) return refused;
    try {
      return await this.send({ jobId: '', request, idempotencyKey: '', maximumAttempts: 1, privacyOwner }, signal);
    } catch (e) {
      if (!(e instanceof TransientHttpError)) throw e;
      const error = productError('ApiError', `${effectLabel(request)} failed: ${e.message}`);
      return { ok: false, error: { ...error, ...(e.status !== undefined ? { status: e.status } : {}) } };
    }
  }

  /**
   * Leaves the mark that stops stale attempts of a completed job from sending, then deletes the job's
   * call records from `records` (the calls' own store unless given) in the background: the job's end
   * waits only for the mark. A deletion that fails (the store down, an S3 server that refuses to
   * list) or a worker lost meanwhile leaves the records behind, harmlessly; `close()` waits for the rest.
   */
  async forgetJob(
    jobId: string,
    jobAttempt: number,
    onDeletionFailed: (e: unknown) => void,
    records: Pick<BlobStore, 'deleteRecords'> = this.deps.store,
  ): Promise<void> {
    await this.writeRecord(callRecordNames.ended(jobId), { at: Date.now(), jobAttempt });
    const deletion = records.deleteRecords(callRecordNames.folder(jobId)).then(
      () => undefined,
      (e: unknown) => onDeletionFailed(e),
    );
    this.deletions.add(deletion);
    void deletion.finally(() => this.deletions.delete(deletion));
  }

  /** Stops the worker's mark and waits for the call records still being deleted. */
  async close(): Promise<void> {
    this.mark.stop();
    await Promise.all(this.deletions);
  }

  /**
   * An older attempt wrote its intent and recorded no outcome. While its worker is alive (it may be
   * waiting for the answer, e.g. cut off from Temporal but not from the API), wait for the outcome;
   * once it is not, or the request must have timed out, go on, uncertain.
   */
  private async awaitOlder(
    attempt: CallAttempt,
    call: Call,
    names: { outcome: string; attempt: string },
    previous: AttemptRecord,
  ): Promise<{ result: CallResult } | { uncertain: boolean }> {
    const deadline = performance.now() + this.timeoutMs(call.request) + WORKER_MARK_STALE_MS;
    let current: AttemptRecord | undefined = previous;
    for (;;) {
      if (!current || current.state === 'answered' || current.state === 'not sent') return { uncertain: false };
      if (compareAttempts(current.attempt, attempt.token) > 0)
        throw staleAttempt('a newer attempt at this call exists');
      if (current.state === 'no answer') return { uncertain: true };
      const lastSign = Math.max(current.at, (await lastSignOf(this.deps.store, current.worker)) ?? 0);
      if (Date.now() - lastSign > WORKER_MARK_STALE_MS || performance.now() > deadline) return { uncertain: true };
      attempt.assertCurrent();
      await delay(WAIT_POLL_MS);
      const [recorded, latest] = await Promise.all([
        this.read(OutcomeRecord, names.outcome),
        this.read(AttemptRecord, names.attempt),
      ]);
      const reusable = usable(recorded, attempt.token);
      if (reusable) return { result: reusable };
      current = latest;
    }
  }

  /**
   * Records the outcome unless another attempt got there first; then the recorded one is the answer
   * (a failure recorded before a job_resume is replaced). Returns `result` itself when it was kept.
   */
  private async recordOutcome(name: string, attempt: CallAttempt, result: CallResult): Promise<CallResult> {
    const record: OutcomeRecord = { ...result, jobAttempt: attempt.token.job };
    if (await this.writeRecord(name, record, true)) return result;
    const winner = usable(await this.read(OutcomeRecord, name), attempt.token);
    if (winner) return winner;
    await this.writeRecord(name, record);
    return result;
  }

  private async finalFailure(
    call: Call,
    outcomeName: string,
    attempt: CallAttempt,
    failures: number,
    last: AttemptRecord['lastFailure'],
  ): Promise<CallEnd> {
    const outcome: EffectOutcome = {
      ok: false,
      error: {
        ...productError(
          'ApiError',
          `${effectLabel(call.request)} failed after ${failures} attempt(s): ${last?.message ?? 'no answer'}`,
        ),
        ...(last?.status !== undefined ? { status: last.status } : {}),
      },
    };
    const result = { outcome };
    return { result: isWrite(call.request) ? await this.recordOutcome(outcomeName, attempt, result) : result };
  }

  /** Text that leaves the call for history: with the owner's tokens in a job with privacy on. */
  private shownText(owner: string | undefined, text: string): Promise<string> {
    return owner !== undefined && this.deps.privacy
      ? this.deps.privacy.tokenizeText(owner, text)
      : Promise.resolve(text);
  }

  /** Why the request cannot be sent at all (a RequestError the script can catch), or undefined. */
  private refusal(request: HttpEffect | ToolEffect): EffectOutcome | undefined {
    const provider = this.deps.providers[request.provider];
    const names = Object.keys(this.deps.providers);
    if (!provider) {
      return {
        ok: false,
        error: productError(
          'RequestError',
          `unknown provider "${request.provider}"; this worker has: ${names.join(', ') || 'none (check its --config)'}`,
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
    const invalid = request.kind === 'http' ? this.deps.validators?.[request.provider]?.check(request) : undefined;
    return invalid ? { ok: false, error: productError('RequestError', invalid) } : undefined;
  }

  /**
   * The request itself: the only place bytes leave for an API, with the owner's privacy tokens
   * restored just before (a token the owner's vault lacks fails the call, and nothing is sent).
   */
  private async send({ request, idempotencyKey, privacyOwner }: Call, signal: AbortSignal): Promise<EffectOutcome> {
    let outgoing: HttpEffect | ToolEffect =
      request.kind === 'http'
        ? { ...request, body: await this.deps.claims.resolveBody(request.body, request.bodyRef) }
        : request;
    if (privacyOwner !== undefined) {
      // Never the tokens in place of the values: a worker wired without privacy fails the attempt.
      if (!this.deps.privacy) throw new Error('a job with privacy on reached a worker whose calls have no privacy');
      try {
        outgoing = await this.deps.privacy.restore(privacyOwner, outgoing, effectLabel(request));
      } catch (e) {
        if (e instanceof PrivacyTokenError) return { ok: false, error: productError(e.name, e.message) };
        throw e;
      }
    }
    if (outgoing.kind === 'tool')
      return this.deps.upstream.call(outgoing.provider, outgoing.tool, outgoing.args, signal);
    const provider = this.deps.providers[outgoing.provider] as HttpProviderConfig;
    return performRequest(provider, outgoing, idempotencyKey, signal);
  }

  private timeoutMs(request: HttpEffect | ToolEffect): number {
    return this.deps.providers[request.provider]?.timeoutMs ?? 60_000;
  }

  /** Runs a request while this worker's mark says it is alive (see awaitOlder). */
  private async tracked<T>(send: () => Promise<T>): Promise<T> {
    this.inFlight++;
    this.mark.keepFresh();
    try {
      return await send();
    } finally {
      this.inFlight--;
    }
  }

  private async read<S extends z.ZodType>(schema: S, name: string): Promise<z.infer<S> | undefined> {
    const bytes = await this.deps.store.getRecord(name);
    return bytes ? schema.parse(JSON.parse(bytes.toString('utf8'))) : undefined;
  }

  private writeRecord(name: string, value: unknown, ifAbsent = false): Promise<boolean> {
    return this.deps.store.putRecord(name, Buffer.from(JSON.stringify(value)), { ifAbsent });
  }
}

/** A recorded outcome this attempt may return: an ok one, or a failure recorded in the same job attempt. */
function usable(recorded: OutcomeRecord | undefined, token: AttemptToken): CallResult | undefined {
  if (!recorded || (!recorded.outcome.ok && recorded.jobAttempt !== token.job)) return undefined;
  return { outcome: recorded.outcome, ...(recorded.uncertain ? { uncertain: true } : {}) };
}

/** Aborts `cancelGraceMs` after the attempt is cancelled: a call already sent gets that long to land. */
function graceSignal(attempt: CallAttempt): AbortSignal {
  const controller = new AbortController();
  const later = () => setTimeout(() => controller.abort(attempt.signal.reason), attempt.cancelGraceMs).unref();
  if (attempt.signal.aborted) later();
  else attempt.signal.addEventListener('abort', later, { once: true });
  return controller.signal;
}
