/**
 * The benchmarks' "direct" runner: what a worker does for a job, minus Temporal. It opens the
 * script's session, makes each round's API calls with performRequest, and delivers the outcomes,
 * all in this process, with no journal, blob store or retries.
 */
import { randomUUID } from 'node:crypto';
import { idempotencyKey } from '../core/effects.ts';
import { RunnableJob, type Json } from '../core/journal.ts';
import type { SandboxLimits } from '../core/limits.ts';
import { performRequest } from '../providers/http-client.ts';
import { effectKey, ScriptSession } from '../sandbox/session.ts';
import type { HttpProviderConfig } from '../providers/config.ts';

export interface DirectRun {
  code: string;
  input?: Json;
  /** The HTTP providers the script may call, by the name it uses. */
  providers: Record<string, HttpProviderConfig>;
  limits: SandboxLimits;
}

/** Runs the script to its end and returns its value; throws what the script threw. */
export async function runDirect({ code, input, providers, limits }: DirectRun): Promise<Json> {
  const job = RunnableJob.parse({ jobId: `bench-direct-${randomUUID()}`, code, input, limits });
  const names = Object.keys(providers).map((name) => ({ name }));
  const { session, report: first } = await ScriptSession.open({ job, providers: names, rounds: [], now: Date.now() });
  let report = first;
  let seq = 0;
  try {
    while (!report.outcome) {
      const outcomes = await Promise.all(
        report.effects.map((effect) => {
          const provider = effect.kind === 'http' ? providers[effect.provider] : undefined;
          if (effect.kind !== 'http' || !provider)
            throw new Error(
              `the direct runner makes only calls to ${Object.keys(providers).join(', ')}; the script asked for ${JSON.stringify(effect)}`,
            );
          return performRequest(provider, effect, idempotencyKey(job.jobId, seq++, effectKey(effect)));
        }),
      );
      report = await session.deliver(outcomes, Date.now());
    }
  } finally {
    // A script that ended has disposed of its isolate; one abandoned by an error here has not.
    session.dispose();
  }
  if (report.outcome.kind === 'threw')
    throw new Error(`direct run failed: ${report.outcome.error.name}: ${report.outcome.error.message}`);
  return report.outcome.value;
}
