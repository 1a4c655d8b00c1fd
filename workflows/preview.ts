/**
 * The preview of a resume (job_resume with dry run): one activity on any worker, under a workflow
 * of its own, so the job's own workflow is not touched and stays resumable exactly as it was.
 * Its answer is the workflow's result (core/resume-preview.ts).
 */
import * as wf from '@temporalio/workflow';
import type { SharedActivities } from '../activities/index.ts';
import { CALL_HEARTBEAT_TIMEOUT_MS } from '../core/timeouts.ts';
import type { PreviewResumeArgs, ResumePreview } from '../core/resume-preview.ts';

export async function previewResume(args: PreviewResumeArgs): Promise<ResumePreview> {
  const { previewResume: preview } = wf.proxyActivities<SharedActivities>({
    // Replaying a long journal takes a while; a lost worker is noticed by its heartbeats.
    startToCloseTimeout: '30 minutes',
    heartbeatTimeout: CALL_HEARTBEAT_TIMEOUT_MS,
    // Nothing it does is a write: trying again on another worker is safe.
    retry: { maximumAttempts: 3 },
    summary: `preview of resuming ${args.job.jobId}`,
  });
  return preview(args);
}
