/**
 * Starting a job without a Temporal server to hand: an input over the limit is refused before
 * Temporal is asked anything, and a start Temporal did not take names its cause and what to do.
 */
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Client, Connection } from '@temporalio/client';
import { NamespaceNotFoundError } from '@temporalio/common';
import { describe, expect, it } from 'vitest';
import { parseConfig } from '../../cli/config.ts';
import { InputTooLargeError, maxRequestBytes } from '../../jobs/input-limits.ts';
import { JobService } from '../../jobs/service.ts';
import { JobStartError, startFailure } from '../../jobs/start-failure.ts';

const ADDRESS = '127.0.0.1:1';

/** A job service whose Temporal server is not there (no retries, so the start fails at once). */
function unreachable(limits: Record<string, number> = {}): JobService {
  const config = parseConfig({ dataDir: mkdtempSync(join(tmpdir(), 'dcm-start-')), providers: {}, limits }, undefined, {
    TEMPORAL_ADDRESS: ADDRESS,
  });
  const connection = Connection.lazy({ address: ADDRESS, interceptors: [] });
  return new JobService(new Client({ connection }), config);
}

describe('starting a job', () => {
  it('says why Temporal did not start it, and what to do, instead of "Failed to start Workflow"', async () => {
    const error = await unreachable()
      .execute({ code: 'async () => input.n + 1', input: { n: 1 } })
      .catch((e: unknown) => e);
    expect(error).toBeInstanceOf(JobStartError);
    expect((error as Error).message).toMatch(
      new RegExp(
        `^Temporal at ${ADDRESS} did not start the job: .*ECONNREFUSED.*No job was started\\. Check that the Temporal server is running`,
      ),
    );
    expect((error as Error).message).not.toContain('Failed to start Workflow');
  });

  it('refuses an input over limits.maxInputBytes before asking Temporal, naming its size and the limit', async () => {
    const error = await unreachable({ maxInputBytes: 1_000 })
      .execute({ code: 'async () => input.length', input: 'x'.repeat(2_000) })
      .catch((e: unknown) => e);
    expect(error).toBeInstanceOf(InputTooLargeError);
    expect((error as Error).message).toBe(
      'The input is 2,002 bytes of JSON; the limit is 1,000 bytes (limits.maxInputBytes). No job was started. Pass less data (the script can fetch it from an API, or split the work into several jobs), or raise limits.maxInputBytes.',
    );
  });

  it('names a namespace that does not exist', () => {
    const error = startFailure(new NamespaceNotFoundError('jobs'), { address: ADDRESS, namespace: 'jobs' });
    expect(error).toBeInstanceOf(JobStartError);
    expect(error.message).toMatch(/has no namespace "jobs", so no job was started\. Register it/);
  });

  it('sizes requests to carry an input and a script within the limits, escaped', () => {
    expect(maxRequestBytes({ maxInputBytes: 64 * 1024 * 1024, maxScriptBytes: 256 * 1024 })).toBe(
      64 * 1024 * 1024 + 6 * 256 * 1024 + 64 * 1024,
    );
  });
});
