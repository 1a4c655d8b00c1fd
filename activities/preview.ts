/**
 * The preview of a resume (job_resume with dry run, core/resume-preview.ts), on a worker: the only
 * place with the providers' credentials, which the reads past the journal need.
 *
 * The script runs in a session of its own, never registered: the previous attempt's journal replays
 * as far as the script agrees with it (adopt mode), then rounds of reads are sent and delivered, until
 * a round would write, each() starts (it reports its plan from the previous attempts' ledger and runs
 * no item) or the script ends. Nothing is kept: no journal, no ledger entry, no call record.
 */
import { heartbeat } from '@temporalio/activity';
import type { ClaimCheck } from '../blobs/claim-check.ts';
import type { BlobStore } from '../blobs/store.ts';
import { effectLabel, privacyOwner } from '../core/effects.ts';
import type { SandboxProvider } from '../core/guest-messages.ts';
import type { EffectOutcome, EffectRequest, HttpEffect, RoundReport } from '../core/journal.ts';
import {
  PREVIEW_CALLS_LISTED,
  PREVIEW_MAX_READ_ROUNDS,
  type PreviewResumeArgs,
  type PreviewRound,
  type ResumePreview,
} from '../core/resume-preview.ts';
import { knownItemsFor } from '../ledger/views.ts';
import type { Privacy } from '../privacy/privacy.ts';
import { ScriptSession } from '../sandbox/session.ts';
import { ActivityAttempt } from './attempt.ts';
import { type Calls, isWrite } from './calls.ts';

export interface PreviewDeps {
  claims: ClaimCheck;
  blobs: BlobStore;
  calls: Calls;
  providers: SandboxProvider[];
  privacy: Privacy;
}

export function createPreviewResume(deps: PreviewDeps) {
  return async function previewResume(args: PreviewResumeArgs): Promise<ResumePreview> {
    const attempt = new ActivityAttempt(0, 0);
    const preview = await attempt.run(() => run(deps, args, attempt.signal));
    const owner = privacyOwner(args.job);
    // Labels, the divergence and an error name the script's values: tokens, as everything a job shows.
    return owner === undefined ? preview : deps.privacy.tokenize(owner, preview, { fieldRules: false });
  };
}

async function run(deps: PreviewDeps, args: PreviewResumeArgs, signal: AbortSignal): Promise<ResumePreview> {
  const { claims } = deps;
  const stored = args.previous ? await claims.loadRounds(args.previous) : [];
  const rounds = await Promise.all(stored.map((r) => claims.resolveRound(r)));
  const job = await claims.resolveJob(args.job);
  const opened = await ScriptSession.open({
    job,
    providers: deps.providers,
    rounds,
    now: args.now,
    mode: 'adopt',
    preview: true,
    onReplayedRound: (k) => heartbeat({ replayedRounds: k + 1 }),
    known: await knownItemsFor(deps.blobs, job.jobId, job.attempt, false),
  });
  const { session, adopted } = opened;
  let report: RoundReport = opened.report;
  const replayed = adopted?.rounds ?? 0;
  const live: PreviewRound[] = [];
  let readsSent = 0;
  try {
    // The first live round's calls that still agree with the journal are answered from it, as in a resume.
    let journaled = adopted?.prefilled ?? [];
    while (!report.outcome && !report.plans?.length && report.effects.length > 0) {
      const unsent = report.effects.filter((_, i) => !journaled[i]);
      const reads = unsent.every((e) => e.kind === 'http' && !isWrite(e));
      const round = { round: replayed + live.length + 1, ...listed(unsent) };
      if (!reads || live.length === PREVIEW_MAX_READ_ROUNDS) {
        live.push({ ...round, sent: false });
        break;
      }
      const outcomes: EffectOutcome[] = await Promise.all(
        report.effects.map(
          async (e, i) =>
            journaled[i] ?? (await deps.calls.previewRead(e as HttpEffect, privacyOwner(args.job), signal)),
        ),
      );
      readsSent += unsent.length;
      live.push({ ...round, sent: true });
      report = await session.deliver(outcomes, Date.now());
      journaled = [];
    }
  } finally {
    session.dispose();
  }
  const { outcome } = report;
  return {
    journal_rounds: rounds.length,
    replay_rounds: replayed,
    divergence: adopted?.divergence ?? null,
    live,
    each: report.plans ?? [],
    ...(outcome ? { ended: outcome.kind === 'returned' ? ('returned' as const) : outcome.error } : {}),
    reads_sent: readsSent,
  };
}

/** A round's calls as a preview lists them: the first few labels, and how many more. */
function listed(effects: EffectRequest[]): Pick<PreviewRound, 'calls' | 'more'> {
  const calls = effects.slice(0, PREVIEW_CALLS_LISTED).map(effectLabel);
  const more = effects.length - calls.length;
  return more > 0 ? { calls, more } : { calls };
}
