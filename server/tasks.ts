/**
 * MCP tasks (protocol 2025-11-25, the SDK's experimental tasks) backed by Temporal: a task is a job,
 * task id = job id. Nothing is kept in the MCP server, so a task survives a server restart and any
 * replica answers `tasks/get`, `tasks/result`, `tasks/cancel` and `tasks/list` for it, for the
 * principal that owns the job (anyone else gets "task not found", as for a job).
 *
 * Status: a running job is `working` (statusMessage: its progress), one waiting for approval is
 * `input_required` (statusMessage: the questions, answered with the `job` tool's approve/deny, the
 * CLI or the Temporal UI), then `completed`, `failed` or `cancelled`. The result is the tool answer
 * the job tools give.
 */
import type { CallToolResult, Result, Task } from '@modelcontextprotocol/sdk/types.js';
import type { TaskStore } from '@modelcontextprotocol/sdk/experimental/tasks/interfaces.js';
import { isLive, JobNotFoundError, type JobService, type JobStatus, type JobView } from '../jobs/service.ts';
import { describe } from './progress.ts';

/** How often clients are asked to poll `tasks/get`: each poll reads the job from Temporal. */
export const TASK_POLL_INTERVAL_MS = 2_000;

const TASK_STATUS: Record<JobStatus, Task['status']> = {
  running: 'working',
  waiting_for_approval: 'input_required',
  completed: 'completed',
  failed: 'failed',
  cancelled: 'cancelled',
};

/** The task a job backs, as `tasks/get` and a task-augmented call answer it. */
export function taskOf(view: JobView, startedAt: Date, updatedAt: Date = new Date()): Task {
  const waiting = view.status === 'waiting_for_approval';
  return {
    taskId: view.job_id,
    status: TASK_STATUS[view.status],
    statusMessage: waiting
      ? `${describe(view)}; answer with the job tool (action approve or deny)`
      : view.error
        ? `${view.error.name}: ${view.error.message}`
        : describe(view),
    createdAt: startedAt.toISOString(),
    lastUpdatedAt: updatedAt.toISOString(),
    ttl: null,
    pollInterval: TASK_POLL_INTERVAL_MS,
  };
}

export class JobTaskStore implements TaskStore {
  private readonly jobs: JobService;
  /** A job's view as the model may see it (privacy: the caller's tokens), which status messages quote. */
  private readonly shown: (view: JobView) => Promise<JobView>;
  /** The tool answer for a job's view (budgeted like the job tools'). */
  private readonly answer: (view: JobView) => Promise<CallToolResult>;

  constructor(
    jobs: JobService,
    shown: (view: JobView) => Promise<JobView>,
    answer: (view: JobView) => Promise<CallToolResult>,
  ) {
    this.jobs = jobs;
    this.shown = shown;
    this.answer = answer;
  }

  /** Tasks are created by the task-augmented calls of execute and job_resume, which start jobs. */
  createTask(): Promise<Task> {
    return Promise.reject(new Error('Tasks are created by calling execute or job_resume with `task`.'));
  }

  async getTask(taskId: string): Promise<Task | null> {
    try {
      const { view, startedAt, closedAt } = await this.jobs.snapshot(taskId);
      return taskOf(await this.shown(view), startedAt, closedAt);
    } catch (e) {
      if (e instanceof JobNotFoundError) return null;
      throw e;
    }
  }

  /** The job's answer; the SDK asks only once the task is terminal. */
  async getTaskResult(taskId: string): Promise<Result> {
    return this.answer((await this.jobs.snapshot(taskId)).view);
  }

  /** Results live in Temporal: the workflow's own result is the task's. */
  storeTaskResult(): Promise<void> {
    return Promise.reject(new Error('A task result is the job result; it cannot be stored.'));
  }

  /** Only `tasks/cancel` changes a task from outside: it cancels the job. */
  async updateTaskStatus(taskId: string, status: Task['status']): Promise<void> {
    if (status !== 'cancelled') throw new Error(`A task's status is its job's; it cannot be set to ${status}.`);
    await this.jobs.cancel(taskId);
  }

  async listTasks(cursor?: string): Promise<{ tasks: Task[]; nextCursor?: string }> {
    const page = await this.jobs.page(cursor);
    const tasks = page.jobs.map((job): Task => ({
      taskId: job.job_id,
      status: TASK_STATUS[job.status],
      createdAt: job.started,
      lastUpdatedAt: job.closed ?? job.started,
      ttl: null,
      ...(isLive(job.status) ? { pollInterval: TASK_POLL_INTERVAL_MS } : {}),
    }));
    return { tasks, ...(page.nextCursor ? { nextCursor: page.nextCursor } : {}) };
  }
}
