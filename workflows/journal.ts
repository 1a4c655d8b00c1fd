/** The attempt's journal as one run of the workflow holds it. */
import * as wf from '@temporalio/workflow';
import type { SharedActivities } from '../activities/index.ts';
import type { BlobRef, DurableScriptInput, JournalParts, Json, Round } from '../core/journal.ts';

// Saving waits out an outage of the blob store, heartbeating (activities/blob-store-waits.ts): each
// attempt may wait half an hour, while a dead worker shows within the heartbeat timeout.
const { saveJournal } = wf.proxyActivities<SharedActivities>({
  startToCloseTimeout: '30 minutes',
  heartbeatTimeout: '10 seconds',
  retry: { maximumAttempts: 10 },
});

/** Earlier runs' rounds by reference (blob segments), this run's rounds inline, and the last checkpoint. */
export class RunJournal {
  segments: BlobRef[];
  readonly rounds: Round[] = [];
  /** JSON size of this run's rounds: past a limit the run continues as new. */
  inlineBytes = 0;
  checkpoint: Json | undefined;

  constructor(carried: DurableScriptInput['carried']) {
    this.segments = carried?.journal ?? [];
    this.checkpoint = carried?.checkpoint;
  }

  /** The whole journal so far, for a session that must replay it. */
  parts(): JournalParts {
    return { segments: this.segments, rounds: this.rounds };
  }

  record(round: Round): void {
    this.rounds.push(round);
    this.inlineBytes += JSON.stringify(round).length;
  }

  /** The whole journal by reference: this run's rounds are saved as one more segment. */
  async save(): Promise<BlobRef[]> {
    return [...this.segments, await saveJournal(this.rounds)];
  }

  /** As save(), without an empty segment when this run recorded no round. */
  async saveIfAny(): Promise<BlobRef[]> {
    return this.rounds.length > 0 ? this.save() : this.segments;
  }
}
