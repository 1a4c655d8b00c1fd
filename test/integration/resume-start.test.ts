/**
 * Starting the next attempt of a job: its script and input, large enough to travel by reference,
 * carry over to the resumed attempt without entering workflow history; of several job_resume calls
 * at once, one starts the attempt and the others get the product's own JobStateError.
 */
import { afterAll, beforeAll, expect, it } from 'vitest';
import { JobStateError } from '../../jobs/service.ts';
import { startInProcessStack, testConfig, type InProcessStack } from '../harness.ts';

let stack: InProcessStack;

beforeAll(async () => {
  stack = await startInProcessStack(testConfig({ providers: {} }));
});

afterAll(async () => {
  await stack?.close();
});

it('resumes a job whose script and input are in the blob store, once, however many resume it at once', async () => {
  const padding = `// ${'a long comment makes a large script '.repeat(300)}`;
  const code = `async () => {
    ${padding}
    if (!resume) {
      await checkpoint({ seen: input.rows.length });
      throw new Error('stop here, to be resumed');
    }
    return { rows: input.rows.length, seen: resume.seen };
  }`;
  const input = { rows: Array.from({ length: 2_000 }, (_, i) => `row ${i} of a large input`) };
  const failed = await stack.jobs.execute({ code, input, waitSeconds: 60 });
  expect(failed).toMatchObject({ status: 'failed', error: { message: 'stop here, to be resumed' } });
  const history = JSON.stringify(await stack.client.workflow.getHandle(failed.job_id).fetchHistory());
  expect(history).not.toContain('row 1999 of a large input');
  expect(history).not.toContain('a long comment makes a large script a long comment');

  const attempts = await Promise.allSettled(Array.from({ length: 5 }, () => stack.jobs.resume(failed.job_id)));
  const started = attempts.filter((a) => a.status === 'fulfilled');
  const refused = attempts.flatMap((a) => (a.status === 'rejected' ? [a.reason as Error] : []));
  expect(started).toHaveLength(1);
  for (const error of refused) expect(error).toBeInstanceOf(JobStateError);
  expect(refused.map((e) => e.message)).toContainEqual(
    `Job ${failed.job_id} is already being resumed: another job_resume started attempt 2 a moment ago. Follow it with the job tool.`,
  );

  const resumed = await stack.jobs.status(failed.job_id, 60);
  expect(resumed).toMatchObject({ status: 'completed', attempt: 2, result: { rows: 2_000, seen: 2_000 } });
});
