/**
 * Humans in the loop, inside the workflow: a pending approval is workflow state (the job holds no
 * sandbox and no worker while it waits: the rounds loop drops the live session and replays the
 * journal after the answer), answered by the `answerApproval` Update or Signal that every way of
 * answering sends (MCP, CLI, Temporal UI), or denied when its timeout passes.
 *
 * Two sources of questions: the script's `approve(question, details)`, and the operator's policy
 * (`providers.NAME.approval`), which holds a matching call before it is made. Both are answered the
 * same way and recorded with who answered, how and when.
 *
 * While any approval is pending the job's `DcmPhase` search attribute says `waiting_for_approval`,
 * so the Temporal UI's list, `jobs list --status waiting_for_approval` and MCP `tasks/list` show it.
 */
import * as wf from '@temporalio/workflow';
import { ANSWER_APPROVAL, ruleIndexFor } from '../core/approval-policy.ts';
import type {
  AnsweredApproval,
  ApprovalAnswer,
  ApprovalRule,
  HeldCall,
  JobApprovals,
  PendingApproval,
} from '../core/approvals.ts';
import type { ApprovalEffect, EffectOutcome, HttpEffect, JobInput, JobState, ToolEffect } from '../core/journal.ts';
import type { JobAttributes } from './search-attributes.ts';

export const answerApprovalUpdate = wf.defineUpdate<AnsweredApproval[], [ApprovalAnswer]>(ANSWER_APPROVAL);
export const answerApprovalSignal = wf.defineSignal<[ApprovalAnswer]>(ANSWER_APPROVAL);

/** The latest answers kept in the job's state (and so in its status and result). */
const ANSWERS_KEPT = 20;
/** Jobs started before approvals had settings of their own wait this long. */
const DEFAULT_TIMEOUT_SECONDS = 7 * 24 * 3600;

type Decision = Pick<AnsweredApproval, 'approved' | 'by' | 'note'>;

export class Approvals {
  private readonly job: JobInput;
  private readonly state: JobState;
  /** Where the phase is upserted; undefined for runs recorded before the phase said it waits. */
  private readonly attributes: JobAttributes | undefined;
  /** Whether the phase last upserted is `waiting_for_approval`. */
  private phaseWaiting = false;
  /** Answers given in this run, by approval id, until the wait that asked picks them up. */
  private readonly decided = new Map<string, AnsweredApproval>();
  /** Policy rules asked `once` whose question is pending: later matching calls wait on the same answer. */
  private readonly asking = new Map<string, Promise<Decision>>();
  /** Called when a round first waits for a human (the rounds loop drops the live session then). */
  private onWait: (() => void) | undefined;
  /** Whether the current round waited for a human. */
  waited = false;

  constructor(job: JobInput, state: JobState, attributes?: JobAttributes) {
    this.job = job;
    this.state = state;
    this.attributes = attributes;
    wf.setHandler(answerApprovalUpdate, (answer: ApprovalAnswer) => this.answer(answer), {
      validator: (answer: ApprovalAnswer) => this.check(answer),
    });
    // A UI that only sends signals gets the same effect; a signal that does not fit is logged and dropped.
    wf.setHandler(answerApprovalSignal, (answer) => {
      try {
        this.check(answer);
        this.answer(answer);
      } catch (e) {
        wf.log.warn(`answerApproval signal ignored: ${(e as Error).message}`);
      }
    });
  }

  /** Starts a round: `onWait` runs once if the round comes to wait for a human. */
  beginRound(onWait: () => void): void {
    this.onWait = onWait;
    this.waited = false;
  }

  /** `approve(question, details)`: resolves to the outcome the script gets. */
  async ask(request: ApprovalEffect): Promise<EffectOutcome> {
    const decision = await this.decide(request.question, request.details, undefined, request.timeoutMs);
    if (decision.approved) return { ok: true, value: { approved: true, by: decision.by, note: decision.note ?? null } };
    return denied(`"${request.question}" was ${refusal(decision)}`, decision);
  }

  /**
   * The policy's say on a call, before it is made: undefined (at once, synchronously) when the call
   * goes ahead unasked; else a wait that ends undefined when approved, or with the outcome of a
   * denied call (an ApprovalDeniedError at the script's call). Calls of one round are counted in the
   * order the script made them. `shown` is the request as the approver sees it, with the owner's
   * privacy tokens (the worker's copy, PlannedEffect.shown); the request itself otherwise.
   */
  hold(
    request: HttpEffect | ToolEffect,
    label: string,
    shown: HttpEffect | ToolEffect = request,
  ): Promise<EffectOutcome | undefined> | undefined {
    const index = this.ruleIndex(request);
    if (index < 0) return undefined;
    const rule = this.job.approvals!.rules[request.provider][index];
    const key = `${request.provider}#${index}`;
    const policy = (this.state.approvalPolicy ??= { counts: {}, granted: {}, asked: 0 });
    const count = (policy.counts[key] = (policy.counts[key] ?? 0) + 1);
    if (count <= rule.after || policy.granted[key]) return undefined;

    return this.askPolicy(rule, key, { provider: request.provider, label, request: withoutKind(shown) });
  }

  /** Whether a rule of the policy names this call (a fused round, which asks nobody, must not make it). */
  governs(request: HttpEffect | ToolEffect): boolean {
    return this.ruleIndex(request) >= 0;
  }

  /** The policy rule that names this call, or -1. */
  private ruleIndex(request: HttpEffect | ToolEffect): number {
    const rules = this.job.approvals?.rules[request.provider];
    return rules ? ruleIndexFor(rules, request) : -1;
  }

  private async askPolicy(rule: ApprovalRule, key: string, held: HeldCall): Promise<EffectOutcome | undefined> {
    const { label, provider } = held;
    const policy = this.state.approvalPolicy!;
    let decision: Promise<Decision>;
    if (rule.ask === 'once') {
      decision =
        this.asking.get(key) ?? this.decide(onceQuestion(label, rule, provider), undefined, held, timeoutMs(rule));
      this.asking.set(key, decision);
    } else {
      decision = this.decide(`Allow ${label}?`, undefined, held, timeoutMs(rule));
    }
    const answer = await decision;
    this.asking.delete(key);
    if (answer.approved) {
      if (rule.ask === 'once') policy.granted[key] = true;
      return undefined;
    }
    return denied(`${label} was not made: its approval was ${refusal(answer)}`, answer);
  }

  /** Adds a pending approval and waits for its answer, or for its timeout (then it is denied). */
  private async decide(question: string, details: unknown, call?: HeldCall, timeoutMs?: number): Promise<Decision> {
    const approvals = this.approvals();
    const policy = (this.state.approvalPolicy ??= { counts: {}, granted: {}, asked: 0 });
    const id = `a${++policy.asked}`;
    const wait = timeoutMs ?? (this.job.approvals?.timeoutSeconds ?? DEFAULT_TIMEOUT_SECONDS) * 1000;
    const pending: PendingApproval = {
      id,
      question,
      ...(details !== undefined ? { details: details as PendingApproval['details'] } : {}),
      since: new Date().toISOString(),
      expires: new Date(Date.now() + wait).toISOString(),
      ...(call ? { call } : {}),
    };
    approvals.pending.push(pending);
    this.showCurrent();
    if (!this.waited) {
      this.waited = true;
      this.onWait?.();
    }

    let expired = false;
    const timer = new wf.CancellationScope();
    void timer
      .run(() => wf.sleep(wait, { summary: `approval ${id}: denied unless answered` }))
      .then(
        () => (expired = true),
        () => undefined,
      );
    await wf.condition(() => expired || this.decided.has(id));
    timer.cancel();
    const answer =
      this.decided.get(id) ??
      this.record(pending, {
        approved: false,
        by: 'timeout',
        via: 'timeout',
        note: `no answer within ${Math.round(wait / 1000)} s`,
      });
    this.decided.delete(id);
    return answer;
  }

  /** Refuses an answer that fits no pending approval (the Update's validator: nothing is recorded). */
  private check(answer: ApprovalAnswer): void {
    if (typeof answer !== 'object' || answer === null || typeof answer.approved !== 'boolean')
      throw new Error('answerApproval takes { "approved": true or false, "note"?: "why", "id"?: "a1" }');
    const pending = this.state.approvals?.pending ?? [];
    if (pending.length === 0) throw new Error(`Job ${wf.workflowInfo().workflowId} waits for no approval.`);
    if (answer.id !== undefined && !pending.some((p) => p.id === answer.id))
      throw new Error(`No pending approval "${answer.id}"; pending: ${pending.map((p) => p.id).join(', ')}.`);
  }

  /** Answers one pending approval (by id) or all of them; returns what was recorded. */
  private answer(answer: ApprovalAnswer): AnsweredApproval[] {
    const pending = this.approvals().pending.filter((p) => answer.id === undefined || p.id === answer.id);
    return pending.map((p) =>
      this.record(p, {
        approved: answer.approved,
        // Straight from Temporal (the UI, the CLI's `temporal workflow update`): Temporal access is operator access.
        by: answer.by ?? 'operator',
        via: answer.via ?? 'temporal',
        ...(answer.note ? { note: String(answer.note).slice(0, 2000) } : {}),
      }),
    );
  }

  private record(
    pending: PendingApproval,
    decision: Omit<AnsweredApproval, 'id' | 'question' | 'since' | 'expires' | 'at'>,
  ): AnsweredApproval {
    const approvals = this.approvals();
    const { id, question, since, expires } = pending;
    const answered: AnsweredApproval = { id, question, since, expires, ...decision, at: new Date().toISOString() };
    approvals.pending = approvals.pending.filter((p) => p.id !== id);
    approvals.answered = [...approvals.answered, answered].slice(-ANSWERS_KEPT);
    this.decided.set(id, answered);
    this.showCurrent();
    return answered;
  }

  private approvals(): JobApprovals {
    return (this.state.approvals ??= { pending: [], answered: [] });
  }

  /** The Temporal UI's current details name what the job waits on (progress otherwise, job-state.ts). */
  private showCurrent(): void {
    const pending = this.approvals().pending;
    this.showPhase(pending.length > 0);
    if (pending.length === 0) {
      const p = this.state.progress;
      wf.setCurrentDetails(
        p
          ? `**Progress:** ${p.done}${p.total !== null ? ` / ${p.total}` : ''}${p.message ? ` — ${p.message}` : ''}`
          : '',
      );
      return;
    }
    const lines = pending.map(
      (p) =>
        `- \`${p.id}\` ${p.question}${p.call ? ` (held call: ${p.call.label})` : ''} — since ${p.since}, denied at ${p.expires}`,
    );
    wf.setCurrentDetails(
      [
        `**Waiting for approval** (${pending.length}):`,
        ...lines,
        '',
        `Answer with the \`${ANSWER_APPROVAL}\` Update or Signal: \`{ "approved": true, "note": "…" }\` (add \`"id": "a1"\` for one).`,
      ].join('\n'),
    );
  }

  /** The phase when it changes: once when the first question is asked, once when the last is answered. */
  private showPhase(waiting: boolean): void {
    if (!this.attributes || waiting === this.phaseWaiting) return;
    this.phaseWaiting = waiting;
    this.attributes.phase(this.state, waiting ? 'waiting_for_approval' : 'running');
  }
}

function denied(message: string, decision: Decision): EffectOutcome {
  return {
    ok: false,
    error: { name: 'ApprovalDeniedError', message, body: { by: decision.by, note: decision.note ?? null } },
  };
}

function refusal(decision: Decision): string {
  if (decision.by === 'timeout') return `not answered in time (${decision.note}), so denied`;
  return `denied by ${decision.by}${decision.note ? `: ${decision.note}` : ''}`;
}

function onceQuestion(label: string, rule: ApprovalRule, provider: string): string {
  return `Allow ${label} and further calls matching ${rule.match.join(', ')} of ${provider}? (${rule.after} made so far)`;
}

function timeoutMs(rule: ApprovalRule): number | undefined {
  return rule.timeoutSeconds === undefined ? undefined : rule.timeoutSeconds * 1000;
}

/** The call as the approver sees it: what would be sent (credentials are added by the worker, never here). */
function withoutKind(request: HttpEffect | ToolEffect): HeldCall['request'] {
  const { kind: _kind, ...rest } = request;
  return rest;
}
