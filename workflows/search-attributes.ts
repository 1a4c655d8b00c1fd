/**
 * The job's search attributes as it runs (core/search-attributes.ts), so an operator can filter and
 * sort jobs in the Temporal UI and CLI: the job service sets owner and attempt when it starts the
 * job; the workflow keeps the providers used, the phase and the progress current. Each upsert is a
 * history event, so progress is upserted at most every PROGRESS_EVERY_MS of workflow time, and
 * once more when the job ends.
 *
 * Upserting an attribute the namespace has not registered fails the workflow task, so a job only
 * upserts when the service could set its attributes at start (they are registered).
 */
import type { SearchAttributeUpdatePair } from '@temporalio/common';
import * as wf from '@temporalio/workflow';
import type { JobState } from '../core/journal.ts';
import { OWNER, PHASE, PROGRESS_DONE, PROVIDERS } from '../core/search-attributes.ts';

const PROGRESS_EVERY_MS = 5_000;

export type Phase = 'running' | 'waiting_for_approval' | 'completed' | 'failed' | 'cancelled';

export class JobAttributes {
  private readonly enabled: boolean;
  private providers = '';
  private done: number | undefined;
  private doneAt = -Infinity;

  constructor() {
    this.enabled = wf.workflowInfo().typedSearchAttributes.get(OWNER) !== undefined;
  }

  /** After a round: the providers used when they change, the progress when it changed a while ago. */
  update(state: JobState): void {
    this.upsert(state, undefined, false);
  }

  /** The phase, with the latest progress. */
  phase(state: JobState, phase: Phase): void {
    this.upsert(state, phase, true);
  }

  private upsert(state: JobState, phase: Phase | undefined, force: boolean): void {
    if (!this.enabled) return;
    const updates: SearchAttributeUpdatePair[] = [];
    if (phase) updates.push({ key: PHASE, value: phase });
    const providers = [...(state.providers ?? [])].sort();
    if (providers.join(',') !== this.providers) {
      this.providers = providers.join(',');
      updates.push({ key: PROVIDERS, value: providers });
    }
    const done = state.progress ? Math.floor(state.progress.done) : undefined;
    if (done !== undefined && done !== this.done && (force || Date.now() - this.doneAt >= PROGRESS_EVERY_MS)) {
      this.done = done;
      this.doneAt = Date.now();
      updates.push({ key: PROGRESS_DONE, value: done });
    }
    if (updates.length > 0) wf.upsertSearchAttributes(updates);
  }
}
